"""The argument checks the contrastive losses share: two ``(B, D)`` batches of one shape and a positive ``τ``."""

from __future__ import annotations

from torch import Tensor


def check_pair(a: Tensor, b: Tensor, temperature: float, names: tuple[str, str]) -> None:
    """Raise ``ValueError`` unless ``temperature > 0`` and ``a``, ``b`` are non-empty ``(B, D)`` of one shape."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(
            f"{names[0]} and {names[1]} must both have shape (B, D); got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    if a.shape[0] < 1:
        raise ValueError(f"batch size must be >= 1, got {a.shape[0]}")
