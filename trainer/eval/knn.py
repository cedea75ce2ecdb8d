"""Weighted k-nearest-neighbour classification of frozen features (InstDisc / DINO protocol).

Features are L2-normalised; each query takes its ``k`` most cosine-similar memory-bank samples, and
each neighbour votes for its label with weight ``exp(similarity / temperature)``; the class with the
largest total vote wins. ``k = 20`` and ``temperature = 0.07`` are the usual defaults.

The memory bank is the labelled set the votes come from, so it may never be the test split. Queries
are processed in blocks so memory stays at ``block_size * N_bank`` similarities.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from topo.trainer.eval.features import FeatureSet
from topo.trainer.eval.probe import TestSplitAccessError

__all__ = ["knn_accuracy", "knn_predict", "knn_scores"]


def _l2_normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    # Same epsilon as torch.nn.functional.normalize: an all-zero feature stays zero (similarity 0).
    return (x / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


def knn_scores(
    train: FeatureSet,
    query: FeatureSet,
    *,
    k: int = 20,
    temperature: float = 0.07,
    num_classes: int | None = None,
    block_size: int = 512,
) -> np.ndarray:
    """Normalised class votes of a weighted cosine kNN.

    Args:
        train: Memory bank (features and labels); any split except ``"test"``.
        query: Samples to classify, same feature dimension; any split.
        k: Number of neighbours, ``1 <= k <= train.n``.
        temperature: Softmax-style temperature of the vote weights, ``> 0``.
        num_classes: Number of classes ``C``; default ``max label in train and query + 1``.
        block_size: Queries handled at once (peak memory ``block_size * train.n`` float32 values).

    Returns:
        Votes per class, shape ``(query.n, C)``, float64, each row summing to 1.

    Raises:
        TestSplitAccessError: If the memory bank is the test split.
        ValueError: On bad ``k``, ``temperature``, ``block_size``, ``num_classes`` or dimensions.
    """
    if not isinstance(train, FeatureSet) or not isinstance(query, FeatureSet):
        raise ValueError("train and query must be FeatureSet objects")
    if train.split == "test":
        raise TestSplitAccessError("the kNN memory bank must not be the test split; use 'train'")
    if train.dim != query.dim:
        raise ValueError(f"train has feature dimension {train.dim} but query has {query.dim}")
    if not isinstance(k, int) or not 1 <= k <= train.n:
        raise ValueError(f"k must be an int in [1, {train.n}] (the memory-bank size), got {k!r}")
    if not (isinstance(temperature, int | float) and math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    if not isinstance(block_size, int) or block_size < 1:
        raise ValueError(f"block_size must be a positive int, got {block_size!r}")
    top_label = int(max(train.y.max(), query.y.max()))
    if num_classes is None:
        num_classes = top_label + 1
    if not isinstance(num_classes, int) or num_classes <= top_label:
        raise ValueError(f"num_classes must be an int > the largest label {top_label}, got {num_classes!r}")

    bank = _l2_normalise(np.asarray(train.x))
    bank_y = np.asarray(train.y)
    out = np.zeros((query.n, num_classes), dtype=np.float64)
    for start in range(0, query.n, block_size):
        q = _l2_normalise(np.asarray(query.x[start : start + block_size]))
        sim = q @ bank.T  # (B, N_bank)
        if k < train.n:
            idx = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        else:
            idx = np.broadcast_to(np.arange(train.n), (q.shape[0], train.n))
        top_sim = np.take_along_axis(sim, idx, axis=1).astype(np.float64)
        # exp((s - s_max) / T) is proportional to exp(s / T) and the nearest neighbour always has
        # weight 1, so neither overflow nor an all-zero vote (0/0) can happen, even for tiny T.
        w = np.exp((top_sim - top_sim.max(axis=1, keepdims=True)) / temperature)
        votes = out[start : start + q.shape[0]]
        rows = np.repeat(np.arange(q.shape[0]), k)
        np.add.at(votes, (rows, bank_y[idx].ravel()), w.ravel())
        total = votes.sum(axis=1, keepdims=True)
        votes /= total
    return out


def knn_predict(train: FeatureSet, query: FeatureSet, **options: Any) -> np.ndarray:
    """Predicted labels of a weighted cosine kNN (ties go to the lower class index).

    ``options`` are :func:`knn_scores`'s (``k``, ``temperature``, ``num_classes``, ``block_size``), and so are the
    errors raised. Returns the predictions, shape ``(query.n,)``, int64.
    """
    return knn_scores(train, query, **options).argmax(axis=1).astype(np.int64)


def knn_accuracy(train: FeatureSet, query: FeatureSet, **options: Any) -> float:
    """Top-1 accuracy in ``[0, 1]`` of the weighted cosine kNN on ``query``'s labels (options as :func:`knn_scores`)."""
    return float(np.mean(knn_predict(train, query, **options) == query.y))
