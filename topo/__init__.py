"""topo: topology-aware self-supervised learning for medical images (TopoCL).

Sub-packages: :mod:`topo.store_schema` (the on-disk contract), :mod:`topo.pipeline` (building stores),
:mod:`topo.trainer` (training and evaluation from stores), :mod:`topo.cli` (the ``topo`` command).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "load_encoder"]


def load_encoder(path: str, **kwargs: Any) -> Any:
    """Rebuild an encoder exported by ``topo export`` (imported lazily: ``import topo`` stays light)."""
    from topo.trainer.export import load_encoder as _load

    return _load(path, **kwargs)
