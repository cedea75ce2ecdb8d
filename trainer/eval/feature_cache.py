"""Features of a run's encoder, cached beside the run and keyed by exactly what they were computed from.

The key is the checkpoint file's sha256, the evaluated store's fingerprint and the extraction options; a cache
whose key differs (a retrain, another store, another resolution) is recomputed, never reused by name.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from topo.trainer.build import encoder_from_checkpoint
from topo.trainer.eval.extract import extract_features
from topo.trainer.eval.features import FEATURES_INDEX, FeatureSet, load_feature_meta, load_features, save_features

SPLITS = ("train", "val", "test")
# Bump when extraction itself changes (normalisation, pooling): every cache is then recomputed.
EXTRACTION_VERSION = 1


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """sha256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def cache_key(checkpoint: Path, store_fingerprint: str, options: dict[str, Any]) -> dict[str, Any]:
    """What a feature cache is valid for."""
    return {
        "checkpoint_sha256": file_sha256(checkpoint),
        "store_fingerprint": store_fingerprint,
        "options": {**options, "extraction_version": EXTRACTION_VERSION},
    }


def cached_features(
    checkpoint: Path, store: str, *, device: str = "cpu"
) -> tuple[dict[str, FeatureSet], np.ndarray, dict[str, Any]]:
    """Features of every split, the test split's gate weights, and the cache key they are valid for.

    The cache lives in ``<run>/features``; it is reused only when its recorded key equals the current one.
    """
    from topo.store_schema import open_store

    cache = checkpoint.parent.parent / "features"
    gates_file = cache / "gate_weights_test.npy"
    enc, cfg, ck = encoder_from_checkpoint(str(checkpoint))
    size = cfg.image_size or ck["geometry"]["height"]
    full_image = cfg.topo_views == "full_image"  # Table 4 (b): whole-view diagrams at eval too
    options = {"stage": cfg.stage, "image_size": size, "full_image": full_image}
    key = cache_key(checkpoint, str(open_store(store).fingerprint), options)
    if (cache / FEATURES_INDEX).exists() and load_feature_meta(cache).get("cache_key") == key:
        gates = np.load(gates_file, allow_pickle=False) if gates_file.exists() else np.zeros((0, 0), np.float32)
        return load_features(cache), gates, key
    sets: dict[str, FeatureSet] = {}
    gates = np.zeros((0, 0), np.float32)
    for split in SPLITS:
        fs = extract_features(
            enc,
            store,
            split,
            stage=cfg.stage,
            image_size=size,
            device=device,
            gate_weights=split == "test",
            full_image=full_image,
        )
        if isinstance(fs, tuple):
            fs, gates = fs
        sets[split] = fs
    gates_file.unlink(missing_ok=True)  # a stale gate file must not outlive its features
    meta = {"checkpoint": checkpoint.name, "stage": cfg.stage, "cache_key": key}
    save_features(cache, sets, meta=meta, overwrite=True)
    if gates.size:
        np.save(gates_file, gates)
    return sets, gates, key
