"""The ROI backend registry: a name, how to build the backend, and what one copy of it needs from Ray.

The build job asks an entry for everything backend-specific (which parameters change the masks, what the store
records about them, whether copies live on long-running actors because they hold a model), so adding a backend is
one module plus one :func:`register_roi` line in ``topo.pipeline.roi``; ``--roi`` choices and help come from here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from topo.pipeline.roi.base import RoiBackend

# (constructor parameters, what the store's build config records, what the store's attributes show)
RoiSpec = tuple[dict[str, Any], dict[str, Any], dict[str, Any]]


@dataclass(frozen=True)
class RoiEntry:
    """One registered ROI backend.

    ``factory`` is the backend class or a ``"module:attribute"`` string, imported only when the backend is built
    (SAM pulls in torchvision and weights). ``resources`` are what one copy needs: an entry asking for a GPU runs
    on Ray actors, one per GPU, that load the model once (on a machine without GPUs, one actor on one CPU);
    every other backend runs inside the CPU chunk tasks. ``resolve`` turns the user's parameters into a
    :data:`RoiSpec`; the default records the backend's own ``params()``.
    """

    name: str
    factory: type[RoiBackend] | Callable[..., RoiBackend] | str
    help: str
    resources: Mapping[str, float] = field(default_factory=lambda: {"CPU": 1})
    resolve: Callable[[dict[str, Any]], RoiSpec] | None = None

    @property
    def on_actors(self) -> bool:
        return self.resources.get("GPU", 0) > 0

    def build(self, **params: Any) -> RoiBackend:
        factory = self.factory
        if isinstance(factory, str):
            module, _, attr = factory.partition(":")
            factory = getattr(importlib.import_module(module), attr)
        return factory(**params)

    def spec(self, params: Mapping[str, Any]) -> RoiSpec:
        if self.resolve is not None:
            return self.resolve(dict(params))
        record = {"backend": self.name, "params": self.build(**params).params()}
        return dict(params), record, dict(record)


_REGISTRY: dict[str, RoiEntry] = {}


def register_roi(entry: RoiEntry) -> RoiEntry:
    """Add a backend (a test or a plug-in may register its own); a name is registered once."""
    if entry.name in _REGISTRY and _REGISTRY[entry.name] != entry:
        raise ValueError(f"ROI backend {entry.name!r} is already registered")
    _REGISTRY[entry.name] = entry
    return entry


def unregister_roi(name: str) -> None:
    _REGISTRY.pop(name, None)


def roi_names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def roi_entry(name: str) -> RoiEntry:
    if name not in _REGISTRY:
        raise ValueError(f"unknown ROI backend {name!r}; valid: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def roi_help() -> str:
    return "ROI backend: " + "; ".join(f"{e.name} ({e.help})" for e in _REGISTRY.values()) + "."
