"""The training configuration: every option of ``topo train`` with its default, defined once."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

STAGES = ("visual", "topo", "joint")
LR_SCHEDULES = ("cosine", "constant")

# Options that may differ between a run and its resumption (they do not change what is computed).
RESUMABLE_DIFFERENCES = frozenset(
    {
        "num_workers",
        "checkpoint_every",
        "device",
        "out_dir",
        "log_every",
        "max_steps",
        "monitor_every",
        "progress",
        "verify_chunks",
    }
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
    # None: 10 % of `epochs` (10 of the paper's 100). A fixed 10 would be half of a 20-epoch run spent warming up.
    warmup_epochs: float | None = None
    lr_schedule: str = "cosine"  # after warm-up: cosine decay to 0, or constant
    visual_aug: str = "byol"  # named two-view recipe (trainer/visual_views.RECIPES)
    crop_scale: tuple[float, float] = (0.2, 1.0)  # random-resized-crop area fraction
    seed: int = 0
    num_workers: int | None = None  # None: 0 for the visual stage, 2 when topology views are made per sample
    device: str = "auto"
    amp: bool = True  # bf16 autocast on CUDA; ignored on CPU
    checkpoint_every: int = 500  # steps
    log_every: int = 10
    monitor_every: int = 1  # epochs between kNN / online-probe evaluations on the val split; 0 = never
    progress: bool = True
    verify_chunks: bool = True  # check each chunk read against the store's checksums (trainer/data.py)
    # topology branch (stages topo and joint)
    pairing: str = "weak+strong"
    topo_views: str = "online"
    stage3_views: str = "topo"  # joint stage: topology-aware views only (the paper's); "standard+topo" stacks
    intensities: str = "per-op"  # each operator's intensity from its own calibrated range; "shared": one for all
    topo_width: int = 384  # the paper's; smaller widths make CPU runs affordable
    self_attention: bool = True
    cross_attention: bool = True
    hierarchical: bool = True
    topo_pooling: str = "max+mean"  # the paper's; "max+mean+sum" adds a count-aware pooling (ablation)
    experts: tuple[str, ...] = ("vision", "topology", "concat", "gated", "cross")
    gate: str = "learned"  # "uniform": fixed equal expert weights (ablation)
    gate_balance: float = 0.0  # λ of the CV² importance loss (Shazeer et al. 2017); the paper: 0
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
        from topo.trainer.models.topology_encoder import POOLINGS

        if self.topo_pooling not in POOLINGS:
            raise ValueError(f"unknown --topo-pooling {self.topo_pooling!r}; valid: {', '.join(POOLINGS)}")
        if self.gate not in ("learned", "uniform"):
            raise ValueError(f"unknown --gate {self.gate!r}; valid: learned, uniform")
        if not self.gate_balance >= 0:
            raise ValueError(f"--gate-balance must be >= 0, got {self.gate_balance}")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        self.experts = tuple(self.experts)
        if self.warmup_epochs is not None and self.warmup_epochs < 0:
            raise ValueError(f"warmup_epochs must be >= 0, got {self.warmup_epochs}")
        self.crop_scale = tuple(float(v) for v in self.crop_scale)  # type: ignore[assignment]
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"unknown lr schedule {self.lr_schedule!r}; valid: {', '.join(LR_SCHEDULES)}")
        from topo.trainer.visual_views import view_recipes

        view_recipes(self.visual_aug, self.crop_scale)  # validates the name and the scale

    @property
    def warmup(self) -> float:
        """Warm-up epochs in effect."""
        return 0.1 * self.epochs if self.warmup_epochs is None else float(self.warmup_epochs)

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["experts"] = list(self.experts)
        d["crop_scale"] = list(self.crop_scale)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        # Configs saved before these options existed were trained with stacked views and one shared intensity.
        legacy = {"stage3_views": "standard+topo", "intensities": "shared"}
        return cls(**{**{k: v for k, v in legacy.items() if k not in d}, **{k: v for k, v in d.items() if k in known}})

    def differences(self, other: dict[str, Any]) -> list[str]:
        """Option names whose values differ from ``other`` (a saved config), ignoring harmless ones."""
        mine = self.to_json()
        return sorted(
            k for k in set(mine) | set(other) if k not in RESUMABLE_DIFFERENCES and mine.get(k) != other.get(k)
        )


# Options that never name a run: where it goes, what it is keyed by already, and the joint stage's inputs (those
# are recorded in config.json and in the report instead).
_NOT_IN_NAME = RESUMABLE_DIFFERENCES | {"store", "stage", "seed", "method", "init_visual", "init_topo", "amp"}
# Short, readable labels for the options most often changed.
_LABELS = {
    "epochs": "e",
    "batch_size": "b",
    "lr": "lr",
    "weight_decay": "wd",
    "warmup_epochs": "wu",
    "image_size": "px",
    "topo_width": "tw",
}
_MAX_SUFFIX = 80


def config_hash(cfg: TrainConfig) -> str:
    """sha256 of every option that changes what is computed (the resumable ones left out)."""
    import hashlib
    import json

    d = {k: v for k, v in cfg.to_json().items() if k not in RESUMABLE_DIFFERENCES}
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()


def _label(name: str, value: Any) -> str:
    if name == "small_input":
        return "stem3" if value else "stem7"
    if isinstance(value, bool):
        return name.replace("_", "-") if value else "no-" + name.replace("_", "-")
    if name in ("backbone", "pairing", "topo_views", "visual_aug", "lr_schedule", "topo_pooling"):
        return str(value)
    if name == "crop_scale":
        return f"crop{value[0]:g}-{value[1]:g}"
    if name == "experts":
        return "x-" + "+".join(value)
    if name == "method_options":
        return "+".join(f"{k}={v}" for k, v in sorted(value.items()))
    return (
        f"{_LABELS.get(name, name.replace('_', '-'))}{value:g}"
        if isinstance(value, float)
        else (f"{_LABELS.get(name, name.replace('_', '-'))}{value}")
    )


def run_suffix(cfg: TrainConfig) -> str:
    """A short readable suffix of the options that differ from their defaults ('' for a default run).

    Two runs that compute different things get different suffixes; an over-long suffix is cut and ends in a
    short hash of the full one, so it stays unique.
    """
    import hashlib
    import re

    defaults: dict[str, Any] = {
        f.name: (f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default)
        for f in dataclasses.fields(TrainConfig)
    }
    defaults["experts"] = tuple(defaults["experts"])
    defaults["crop_scale"] = tuple(defaults["crop_scale"])
    parts = [
        _label(f.name, getattr(cfg, f.name))
        for f in dataclasses.fields(cfg)
        if f.name not in _NOT_IN_NAME and getattr(cfg, f.name) != defaults[f.name]
    ]
    suffix = re.sub(r"[^A-Za-z0-9.+=_-]", "_", "-".join(parts))
    if len(suffix) > _MAX_SUFFIX:
        suffix = suffix[: _MAX_SUFFIX - 9] + "-" + hashlib.sha256(suffix.encode()).hexdigest()[:8]
    return suffix


def run_name(cfg: TrainConfig) -> str:
    """``<stage>-seed<seed>`` plus the suffix of non-default options: the run folder's name under its method."""
    suffix = run_suffix(cfg)
    return f"{cfg.stage}-seed{cfg.seed}" + (f"-{suffix}" if suffix else "")
