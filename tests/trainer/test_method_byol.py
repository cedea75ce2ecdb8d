"""BYOL: outputs on topology views, registry and config checks (momentum behaviour: test_momentum_methods)."""

from __future__ import annotations

import pytest
import torch
from method_helpers import FEAT, TinyConvNet

from topo.trainer.methods import BYOL, BYOLConfig, build_method

torch.set_num_threads(1)

SMALL = {"proj_hidden_dim": 32, "proj_dim": 8, "pred_hidden_dim": 32}


def test_registry_and_config_errors() -> None:
    method = build_method("byol", TinyConvNet(), FEAT, base_momentum=0.95, **SMALL)
    assert isinstance(method, BYOL) and method.cfg.base_momentum == 0.95
    cfg = BYOLConfig()
    assert (cfg.proj_hidden_dim, cfg.proj_dim, cfg.pred_hidden_dim) == (4096, 256, 4096)
    assert cfg.base_momentum == 0.99
    with pytest.raises(ValueError, match=r"\['temperature'\].*valid keys.*'base_momentum'"):
        build_method("byol", TinyConvNet(), FEAT, temperature=0.1)
    with pytest.raises(ValueError, match=r"base_momentum must be in \[0.0, 1.0\], got -0.1"):
        build_method("byol", TinyConvNet(), FEAT, base_momentum=-0.1)
    with pytest.raises(ValueError, match="pred_hidden_dim must be > 0, got 0"):
        build_method("byol", TinyConvNet(), FEAT, pred_hidden_dim=0)
    with pytest.raises(ValueError, match=r"step must be in \[0, 10\], got -1"):
        build_method("byol", TinyConvNet(), FEAT, **SMALL).on_step_end(-1, 10)
