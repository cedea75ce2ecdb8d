"""Named visual recipes, crop scale and the learning-rate schedule of `topo train`."""

from __future__ import annotations

import pytest
import torch

from topo.trainer.config import TrainConfig, run_name
from topo.trainer.train import lr_lambda
from topo.trainer.visual_views import RECIPES, VIEW1, VIEW2, augment, view_recipes


def _images() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (8, 1, 28, 28), generator=g, dtype=torch.uint8)


def test_recipes_by_name_and_crop_scale() -> None:
    assert view_recipes("byol") == (VIEW1, VIEW2)
    v1, v2 = view_recipes("simclr", (0.5, 1.0))
    assert v1 == v2 and v1.crop_scale == (0.5, 1.0)
    assert v1.blur_p == 0 and v1.solarize_p == 0 and v1.noise_std == pytest.approx(0.03)
    assert set(RECIPES) >= {"byol", "simclr"}
    with pytest.raises(ValueError, match="unknown --visual-aug"):
        view_recipes("moco")
    with pytest.raises(ValueError, match="--crop-scale"):
        view_recipes("simclr", (0.8, 0.2))
    with pytest.raises(ValueError, match="unknown lr schedule"):
        TrainConfig(store="s", out_dir="o", lr_schedule="step")


def test_noise_only_where_asked_and_streams_of_other_recipes_unchanged() -> None:
    x = _images()
    plain = view_recipes("simclr")[0]
    quiet = type(plain)(**{**plain.__dict__, "noise_std": 0.0})
    a = augment(x, plain, size=28, generator=torch.Generator().manual_seed(1))
    b = augment(x, quiet, size=28, generator=torch.Generator().manual_seed(1))
    # Same crops and jitter (the noise is drawn last), so the difference is the noise alone: about 0.03 / 0.25.
    diff = (a - b).std().item()
    assert 0.05 < diff < 0.2
    again = augment(x, VIEW1, size=28, generator=torch.Generator().manual_seed(1))
    assert torch.equal(again, augment(x, VIEW1, size=28, generator=torch.Generator().manual_seed(1)))


def test_constant_schedule_and_run_names() -> None:
    cos, const = lr_lambda(2, 10, "cosine"), lr_lambda(2, 10, "constant")
    assert cos(0) == const(0) == 0.5 and const(9) == 1.0 and cos(9) < 0.1
    cfg = TrainConfig(store="s", out_dir="o", visual_aug="simclr", crop_scale=(0.5, 1.0), lr_schedule="constant")
    assert run_name(cfg) == "visual-seed0-constant-simclr-crop0.5-1"
    # A saved config (lists in JSON) names the same run.
    assert run_name(TrainConfig.from_json(cfg.to_json())) == run_name(cfg)
