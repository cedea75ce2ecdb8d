"""One report row per evaluated run: the probe's test numbers beside the references they must beat.

Each row shows the test ACC/AUC, the test split's majority-class ACC and chance AUC, the classes present in
every split, the ``C`` chosen on val, the kNN monitor, and the run's training budget when the run recorded it.
Warnings (a class absent from a split, a probe not above the majority rate) follow the table in bold, so they
cannot be missed in the printed report.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from topo.trainer.eval.report.records import RunResult

__all__ = ["probe_rows_markdown"]

_SPLITS = ("train", "val", "test")


def _pct(v: Any) -> str:
    return "–" if v is None else f"{100 * float(v):.1f}"


def _classes(refs: dict[str, Any]) -> str:
    parts = [f"{refs[s]['classes_present']}/{refs[s]['num_classes']}" for s in _SPLITS if s in refs]
    return " · ".join(parts) if parts else "–"


def _budget(extras: dict[str, Any]) -> list[str]:
    b = extras.get("budget") or {}
    epochs = b.get("epochs_per_stage") or {}
    per_stage = ", ".join(f"{k} {v}" for k, v in epochs.items()) or "–"
    seen = b.get("images_seen")
    wall = b.get("wall_s")
    params = b.get("params")
    return [
        per_stage,
        "–" if seen is None else f"{int(seen):,}",
        "–" if wall is None else f"{float(wall):.0f}",
        "–" if params is None else f"{float(params) / 1e6:.2f}M",
    ]


def _init(init: dict[str, str]) -> str:
    """The runs a joint stage started from, by folder name; ``none`` for a random start."""
    if not init:
        return "–"

    def name(p: str) -> str:
        return p if p == "none" else Path(p).parent.parent.name

    return f"{name(init.get('visual', 'none'))} · {name(init.get('topo', 'none'))}"


def probe_rows_markdown(results: Sequence[RunResult], *, title: str = "Per-run probe details") -> str:
    """Markdown table (one row per run) plus a bold list of every warning."""
    head = (
        "| row | seed | test ACC | majority ACC | test AUC | chance AUC | classes train·val·test | C | kNN val ACC "
        "| epochs per stage | images seen | wall s | params | joint init visual · topo |"
    )
    lines = [f"### {title}", "", head, "|" + "---|" * 14]
    loud: list[str] = []
    for r in results:
        probe = r.extras.get("probe") or {}
        refs = probe.get("references") or {}
        majority = (refs.get("test") or {}).get("majority_acc")
        chance = (refs.get("test") or {}).get("chance_auc")
        c = (probe.get("selection") or {}).get("C")
        row = r.extras.get("row", r.variant)
        cells = [
            str(row),
            str(r.seed),
            _pct(r.acc),
            _pct(majority),
            f"{r.auc:.3f}",
            "–" if chance is None else f"{chance:.2f}",
            _classes(refs),
            "–" if c is None else f"{c:.3g}",
            _pct(r.extras.get("knn_val_acc")),
            *_budget(r.extras),
            _init(r.extras.get("init") or {}),
        ]
        lines.append("| " + " | ".join(cells) + " |")
        loud += [f"**{row} seed {r.seed}: {w}**" for w in probe.get("warnings") or []]
    if loud:
        lines += ["", *loud]
    return "\n".join(lines)
