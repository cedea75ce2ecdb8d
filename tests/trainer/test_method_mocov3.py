"""MoCo v3: outputs on topology views, registry and config checks (momentum behaviour: test_momentum_methods)."""

from __future__ import annotations

import pytest
import torch
from method_helpers import FEAT, TinyConvNet

from topo.trainer.methods import MoCoV3, MoCoV3Config, build_method

torch.set_num_threads(1)

SMALL = {"proj_hidden_dim": 32, "proj_dim": 8, "pred_hidden_dim": 32}


def test_registry_and_config_errors() -> None:
    method = build_method("mocov3", TinyConvNet(), FEAT, temperature=0.5, **SMALL)
    assert isinstance(method, MoCoV3) and method.cfg.temperature == 0.5
    cfg = MoCoV3Config()
    assert (cfg.proj_hidden_dim, cfg.proj_dim, cfg.pred_hidden_dim) == (4096, 256, 4096)
    assert (cfg.temperature, cfg.base_momentum) == (0.2, 0.99)
    with pytest.raises(ValueError, match=r"\['momentum'\].*valid keys.*'base_momentum'"):
        build_method("mocov3", TinyConvNet(), FEAT, momentum=0.9)
    with pytest.raises(ValueError, match=r"base_momentum must be in \[0.0, 1.0\], got 1.5"):
        build_method("mocov3", TinyConvNet(), FEAT, base_momentum=1.5)
    with pytest.raises(ValueError, match=r"step must be in \[0, 10\], got 11"):
        build_method("mocov3", TinyConvNet(), FEAT, **SMALL).on_step_end(11, 10)
    with pytest.raises(ValueError, match="total_steps must be >= 1"):
        build_method("mocov3", TinyConvNet(), FEAT, **SMALL).on_step_end(0, 0)
