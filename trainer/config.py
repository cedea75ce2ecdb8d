"""The training configuration: every option of ``topo train`` with its default, defined once."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

STAGES = ("visual", "topo", "joint")

# Options that may differ between a run and its resumption (they do not change what is computed).
RESUMABLE_DIFFERENCES = frozenset(
    {"num_workers", "checkpoint_every", "device", "out_dir", "log_every", "max_steps", "monitor_every", "progress"}
)


@dataclass
class TrainConfig:
    """One stage of training. Paths are strings so the config travels inside checkpoints as plain data."""

    store: str
    out_dir: str
    method: str = "byol"
    stage: str = "visual"
    backbone: str = "resnet50"
    small_input: bool | None = None  # None: on for images of 64² or less
    image_size: int | None = None  # training resolution; None: the store's
    epochs: int = 100
    max_steps: int | None = None  # stop early (demo, tests); the schedule still follows `epochs`
    batch_size: int = 256  # global, across ranks
    lr: float = 1e-3  # AdamW, per 256 samples of global batch (scaled linearly)
    weight_decay: float = 0.05
    warmup_epochs: float = 10.0
    seed: int = 0
    num_workers: int | None = None  # None: 0 for the visual stage, 2 when topology views are made per sample
    device: str = "auto"
    amp: bool = True  # bf16 autocast on CUDA; ignored on CPU
    checkpoint_every: int = 500  # steps
    log_every: int = 10
    monitor_every: int = 1  # epochs between kNN / online-probe evaluations on the val split; 0 = never
    progress: bool = True
    # topology branch (stages topo and joint)
    pairing: str = "weak+strong"
    topo_views: str = "online"
    stage3_views: str = "topo"  # joint stage: topology-aware views only (the paper's); "standard+topo" stacks
    intensities: str = "per-op"  # each operator's intensity from its own calibrated range; "shared": one for all
    topo_width: int = 384  # the paper's; smaller widths make CPU runs affordable
    self_attention: bool = True
    cross_attention: bool = True
    hierarchical: bool = True
    experts: tuple[str, ...] = ("vision", "topology", "concat", "gated", "cross")
    init_visual: str | None = None  # stage-1 checkpoint for the joint stage
    init_topo: str | None = None  # stage-2 checkpoint for the joint stage
    method_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from topo.trainer.methods import METHODS
        from topo.trainer.topo_views import INTENSITIES, PAIRINGS, TOPO_VIEW_MODES

        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; valid: {', '.join(sorted(METHODS))}")
        if self.stage not in STAGES:
            raise ValueError(f"unknown stage {self.stage!r}; valid: {', '.join(STAGES)}")
        if self.pairing not in PAIRINGS:
            raise ValueError(f"unknown pairing {self.pairing!r}; valid: {', '.join(PAIRINGS)}")
        if self.topo_views not in TOPO_VIEW_MODES:
            raise ValueError(f"unknown --topo-views {self.topo_views!r}; valid: {', '.join(TOPO_VIEW_MODES)}")
        if self.stage3_views not in ("topo", "standard+topo"):
            raise ValueError(f"unknown --stage3-views {self.stage3_views!r}; valid: topo, standard+topo")
        if self.intensities not in INTENSITIES:
            raise ValueError(f"unknown --intensities {self.intensities!r}; valid: {', '.join(INTENSITIES)}")
        if self.stage == "joint" and self.stage3_views == "topo" and self.topo_views == "precomputed":
            raise ValueError(
                "--topo-views precomputed keeps the diagram of the un-augmented image, not of the view the encoder "
                "sees in the joint stage; use online or full_image, or --stage3-views standard+topo"
            )
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        self.experts = tuple(self.experts)

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["experts"] = list(self.experts)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def differences(self, other: dict[str, Any]) -> list[str]:
        """Option names whose values differ from ``other`` (a saved config), ignoring harmless ones."""
        mine = self.to_json()
        return sorted(
            k for k in set(mine) | set(other) if k not in RESUMABLE_DIFFERENCES and mine.get(k) != other.get(k)
        )
