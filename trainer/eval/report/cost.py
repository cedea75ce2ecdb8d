"""Model cost: parameter counts and FLOPs, and the markdown cost table (the paper's Tables 6-7)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def _call_args(example_input: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    if isinstance(example_input, Mapping):
        return (), dict(example_input)
    if isinstance(example_input, tuple | list):
        return tuple(example_input), {}
    return (example_input,), {}


def _first_tensor(obj: Any) -> torch.Tensor | None:
    if isinstance(obj, torch.Tensor):
        return obj
    if isinstance(obj, Mapping):
        obj = list(obj.values())
    if isinstance(obj, tuple | list):
        for o in obj:
            t = _first_tensor(o)
            if t is not None:
                return t
    return None


def _float_outputs(obj: Any) -> list[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        return [obj] if obj.is_floating_point() and obj.requires_grad else []
    if isinstance(obj, Mapping):
        obj = list(obj.values())
    if isinstance(obj, tuple | list):
        return [t for o in obj for t in _float_outputs(o)]
    return []


def _per_sample(total: int, batch: int) -> int | float:
    return total // batch if total % batch == 0 else total / batch


def model_cost(model: nn.Module, example_input: Any, *, backward: bool = False) -> dict[str, Any]:
    """Parameter counts and FLOPs of a model (for the paper's cost tables).

    FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` (a multiply-add counts as 2
    FLOPs; only the ops it knows — matmuls, convolutions, attention — are counted; element-wise ops
    and normalisation are not). The forward pass runs under ``torch.no_grad``; the model's
    train/eval mode is left as it is.

    Args:
        model: The module.
        example_input: A tensor, a tuple/list of positional arguments, or a dict of keyword
            arguments; the first tensor's first dimension is the batch size.
        backward: Also count a training step (forward + backward of the sum of the outputs); existing
            ``.grad`` values are restored afterwards.

    Returns:
        ``{"params_total", "params_trainable", "batch_size", "flops_forward_batch",
        "flops_forward_per_sample", "gflops_forward_per_sample"}`` plus, with ``backward``,
        ``"flops_train_step_per_sample"`` and ``"gflops_train_step_per_sample"``.

    Raises:
        ValueError: If no input tensor is found, or ``backward`` is requested without any output
            that requires grad.
    """
    args, kwargs = _call_args(example_input)
    first = _first_tensor([list(args), kwargs])
    if first is None or first.ndim == 0:
        raise ValueError("example_input must contain a batched tensor (first dimension = batch size)")
    batch = int(first.shape[0])
    if batch < 1:
        raise ValueError(f"example_input batch size must be >= 1, got {batch}")
    params = list(model.parameters())
    out: dict[str, Any] = {
        "params_total": int(sum(p.numel() for p in params)),
        "params_trainable": int(sum(p.numel() for p in params if p.requires_grad)),
        "batch_size": batch,
    }
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(*args, **kwargs)
    fwd = int(counter.get_total_flops())
    out["flops_forward_batch"] = fwd
    out["flops_forward_per_sample"] = _per_sample(fwd, batch)
    out["gflops_forward_per_sample"] = fwd / batch / 1e9

    if backward:
        saved = [p.grad for p in params]
        counter = FlopCounterMode(display=False)
        try:
            with counter, torch.enable_grad():
                outputs = _float_outputs(model(*args, **kwargs))
                if not outputs:
                    raise ValueError("backward=True needs a model output that requires grad (trainable parameters)")
                torch.stack([o.sum() for o in outputs]).sum().backward()
        finally:
            for p, g in zip(params, saved, strict=True):
                p.grad = g
        step = int(counter.get_total_flops())
        out["flops_train_step_per_sample"] = _per_sample(step, batch)
        out["gflops_train_step_per_sample"] = step / batch / 1e9
    return out


def cost_table_markdown(rows: Sequence[Mapping[str, Any]], *, title: str | None = None) -> str:
    """Markdown cost table (the paper's Tables 6-7) from :func:`model_cost` rows.

    Each row needs ``"name"`` and the keys of :func:`model_cost`. Optional columns appear when any row
    has them: ``"gflops_train_step_per_sample"`` and ``"throughput_img_s"`` (measured training
    throughput in images/s, supplied by the caller).

    Args:
        rows: One mapping per model / method.
        title: Optional line above the table.

    Returns:
        The markdown text.

    Raises:
        ValueError: If ``rows`` is empty or a row lacks a required key.
    """
    if not rows:
        raise ValueError("rows is empty; give at least one model_cost row with a 'name'")
    required = ("name", "params_total", "params_trainable", "gflops_forward_per_sample")
    for i, r in enumerate(rows):
        missing = [k for k in required if k not in r]
        if missing:
            raise ValueError(f"rows[{i}] lacks {missing}; required keys: {list(required)}")
    has_train = any("gflops_train_step_per_sample" in r for r in rows)
    has_tput = any(r.get("throughput_img_s") is not None for r in rows)
    header = ["Model", "Params (M)", "Trainable (M)", "GFLOPs/img (fwd)"]
    if has_train:
        header.append("GFLOPs/img (train step)")
    if has_tput:
        header.append("Throughput (img/s)")
    lines = [f"{title}", ""] if title else []
    lines += ["| " + " | ".join(header) + " |", "|---|" + "|".join(["---:"] * (len(header) - 1)) + "|"]
    for r in rows:
        cells = [
            str(r["name"]),
            f"{r['params_total'] / 1e6:.2f}",
            f"{r['params_trainable'] / 1e6:.2f}",
            f"{r['gflops_forward_per_sample']:.3f}",
        ]
        if has_train:
            g = r.get("gflops_train_step_per_sample")
            cells.append("—" if g is None else f"{g:.3f}")
        if has_tput:
            t = r.get("throughput_img_s")
            cells.append("—" if t is None else f"{t:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
