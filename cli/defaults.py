"""Option defaults read from the config dataclasses, so that each default is declared once, where it is used."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace
from typing import Any


def config_defaults(cls: type) -> SimpleNamespace:
    """A dataclass's defaults as attributes (factories called once); fields without a default are left out."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return SimpleNamespace(**out)
