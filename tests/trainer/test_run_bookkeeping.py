"""Runs keyed by what they are: run names, one training per folder, no silent overwrite, keyed feature caches."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from topo.trainer.config import TrainConfig, config_hash, run_name
from topo.trainer.run_folder import LOCK, RunFolderError, claim_run_folder
from topo.trainer.stages import run_stages, stage_config


def _common(store, **kw) -> dict:
    base = dict(
        store=str(store),
        method="simclr",
        backbone="resnet18",
        small_input=False,
        epochs=2,
        batch_size=32,
        warmup_epochs=0.5,
        num_workers=0,
        monitor_every=0,
        progress=False,
        max_steps=1,
        method_options={"proj_hidden_dim": 64, "proj_dim": 32},
    )
    base.update(kw)
    return base


def _hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_ablations_get_their_own_folders_and_hashes() -> None:
    base = TrainConfig(store="s", out_dir="o", stage="joint")
    ablations = [
        base,
        TrainConfig(store="s", out_dir="o", stage="joint", pairing="weak+weak"),
        TrainConfig(store="s", out_dir="o", stage="joint", topo_views="full_image"),
        TrainConfig(store="s", out_dir="o", stage="joint", experts=("vision", "gated")),
        TrainConfig(store="s", out_dir="o", stage="joint", self_attention=False),
    ]
    names = [run_name(c) for c in ablations]
    assert names[0] == "joint-seed0"  # a default run keeps the plain name
    assert names[1] == "joint-seed0-weak+weak" and names[2] == "joint-seed0-full_image"
    assert len(set(names)) == len(names)
    assert len({config_hash(c) for c in ablations}) == len(ablations)
    # Options that do not change what is computed change neither the name nor the hash.
    moved = TrainConfig(store="s", out_dir="elsewhere", stage="joint", num_workers=4, device="cpu")
    assert run_name(moved) == names[0] and config_hash(moved) == config_hash(base)


def test_two_trainings_into_one_folder_are_refused(tmp_path) -> None:
    run = tmp_path / "visual-seed0"
    with claim_run_folder(run, resume=False, overwrite=False):
        assert (run / LOCK).read_text().startswith(str(os.getpid()))
        with (
            pytest.raises(RunFolderError, match="being written by another training"),
            claim_run_folder(run, resume=True, overwrite=False),
        ):
            pass
    assert not (run / LOCK).exists()
    # A lock left by a process that no longer exists is taken over.
    (run / LOCK).write_text(f"999999999 {os.uname().nodename}")
    with claim_run_folder(run, resume=False, overwrite=False):
        pass


def test_joint_stage_alone_needs_its_inits(tmp_path) -> None:
    with pytest.raises(ValueError, match="--init-visual RUN\\|none"):
        run_stages("joint", _common("s"), tmp_path, init_topo="none")
    with pytest.raises(ValueError, match="--init-topo"):
        run_stages("joint", _common("s"), tmp_path, init_visual="none")
    with pytest.raises(ValueError, match="no checkpoint there"):
        run_stages("joint", _common("s"), tmp_path, init_visual="visual-seed0", init_topo="none")


@pytest.mark.slow  # ~40 s on two busy cores: four one-step trainings and two extractions
def test_ablation_leaves_the_main_run_alone_and_retrain_invalidates_the_cache(small_store, tmp_path) -> None:
    from topo.trainer.eval.feature_cache import cached_features

    runs = tmp_path / "simclr"
    main = run_stages("visual", _common(small_store), runs)[0]
    main_dir = Path(main.cfg.out_dir)
    sets, _, key = cached_features(main.result.checkpoint, str(small_store))
    before = _hashes(main_dir)

    ablation = run_stages("visual", _common(small_store, lr=5e-3), runs)[0]
    assert Path(ablation.cfg.out_dir) != main_dir and "-lr0.005-" in Path(ablation.cfg.out_dir).name
    assert _hashes(main_dir) == before  # byte for byte

    # A fresh run into an existing run folder is refused; --overwrite replaces it.
    with pytest.raises(RunFolderError, match="already holds a run"):
        run_stages("visual", _common(small_store), runs)
    assert _hashes(main_dir) == before
    # Same name (max_steps does not name a run), other weights: the cached features must be recomputed.
    retrained = run_stages("visual", _common(small_store, max_steps=2), runs, overwrite=True)[0]
    assert Path(retrained.cfg.out_dir) == main_dir
    sets2, _, key2 = cached_features(retrained.result.checkpoint, str(small_store))
    assert key2["checkpoint_sha256"] != key["checkpoint_sha256"]
    assert key2["store_fingerprint"] == key["store_fingerprint"]
    assert not np.array_equal(sets2["val"].x, sets["val"].x)
    # Unchanged checkpoint: the cache is reused (same arrays), not recomputed.
    features_json = main_dir / "features" / "features.json"
    stamp = features_json.stat().st_mtime_ns
    sets3, _, key3 = cached_features(retrained.result.checkpoint, str(small_store))
    assert key3 == key2 and features_json.stat().st_mtime_ns == stamp
    assert np.array_equal(sets3["val"].x, sets2["val"].x)


def test_stage_config_names_the_folder(tmp_path) -> None:
    cfg = stage_config(_common("s", pairing="weak+weak"), tmp_path, "topo")
    assert Path(cfg.out_dir).parent == tmp_path and Path(cfg.out_dir).name == run_name(cfg)


def test_eval_finds_the_only_suffix_and_refuses_to_guess_between_ablations(tmp_path) -> None:
    from topo.trainer.eval.rows import resolve_suffix

    def run(name: str) -> None:
        (tmp_path / name / "checkpoints").mkdir(parents=True)
        (tmp_path / name / "checkpoints" / "final.pt").write_bytes(b"")

    assert resolve_suffix(tmp_path, 0, None) == ""
    run("joint-seed0-e20")
    run("visual-seed0-e20")
    run("visual-seed0-e40")  # the compute-matched baseline does not make the choice ambiguous
    run("joint-seed10-e20")  # another seed is not a candidate
    assert resolve_suffix(tmp_path, 0, None) == "e20"
    assert resolve_suffix(tmp_path, 0, "weak+weak") == "weak+weak"
    run("joint-seed0-e20-weak+weak")
    with pytest.raises(ValueError, match="several joint runs for seed 0"):
        resolve_suffix(tmp_path, 0, None)
