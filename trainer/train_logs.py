"""A training run's logs: ``log.csv`` (one row per logging step), ``gates.csv`` (one row per epoch), TensorBoard.

Only the main process writes; the files are opened once and closed by :meth:`RunLogs.close`, which the trainer
calls in ``finally`` so an interrupted run leaves complete rows and no open handles.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import IO, Any

STEP_COLUMNS = ["step", "epoch", "lr", "loss", "probe_acc_train", "samples_per_s"]


class RunLogs:
    """The open log files of one stage (no-ops when ``enabled`` is false: other ranks)."""

    def __init__(self, out_dir: Path, *, enabled: bool, gate_columns: list[str]) -> None:
        self.out_dir, self.enabled, self.gate_columns = out_dir, enabled, gate_columns
        self.writer: Any = None
        self._files: list[IO[str]] = []
        self._log: Any = None
        self._gates: Any = None

    def open(self, config: dict[str, Any]) -> RunLogs:
        if not self.enabled:
            return self
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / "config.json").write_text(json.dumps(config, indent=2))
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(self.out_dir / "tb"))
        self._log = self._csv("log.csv", STEP_COLUMNS + self.gate_columns)
        if self.gate_columns:
            self._gates = self._csv("gates.csv", ["epoch", "step", *self.gate_columns])
        return self

    def _csv(self, name: str, header: list[str]) -> Any:
        path = self.out_dir / name
        new = not path.exists()
        f = path.open("a", newline="")
        self._files.append(f)
        w = csv.writer(f)
        if new:
            w.writerow(header)
        return (w, f)

    def step(self, step: int, epoch: int, lr: float, loss: float, acc: float, rate: float, gates: dict) -> None:
        if not self.enabled:
            return
        self.writer.add_scalar("train/loss", loss, step)
        self.writer.add_scalar("train/lr", lr, step)
        self.writer.add_scalar("train/online_probe_acc", acc, step)
        row = [step, epoch, f"{lr:.6g}", f"{loss:.6f}", f"{acc:.4f}", f"{rate:.1f}"]
        w, f = self._log
        w.writerow(row + [f"{gates.get(c, float('nan')):.4f}" for c in self.gate_columns])
        f.flush()

    def epoch_gates(self, epoch: int, step: int, gates: dict[str, float]) -> None:
        """One row per finished epoch, and the same numbers under ``gate/`` in TensorBoard."""
        if not self.enabled or self._gates is None:
            return
        for k, v in gates.items():
            self.writer.add_scalar(f"gate/{k.removeprefix('gate_')}", v, step)
        w, f = self._gates
        w.writerow([epoch, step, *(f"{gates[c]:.4f}" for c in self.gate_columns)])
        f.flush()

    def scalars(self, prefix: str, values: dict[str, float], step: int) -> None:
        if self.enabled:
            for k, v in values.items():
                self.writer.add_scalar(f"{prefix}/{k}", v, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        for f in self._files:
            f.close()
        self._files.clear()


SUMMARY = "summary.json"  # steps, images seen and wall time of the run, read by the report


def write_summary(out_dir: Path, steps: int, images_seen: int, epochs: int, seconds: float, *, resumed: bool) -> None:
    """What the run cost: steps, images seen and wall time (summed over resumed sessions)."""
    f = out_dir / SUMMARY
    before = json.loads(f.read_text()).get("wall_s", 0.0) if resumed and f.exists() else 0.0
    doc = {"steps": steps, "images_seen": images_seen, "epochs": epochs, "wall_s": before + seconds}
    f.write_text(json.dumps(doc, indent=1))
