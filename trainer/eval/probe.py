"""Linear probe on frozen features, with an API that keeps the test split out of every choice.

Protocol (as in the TopoCL paper: a linear classifier on frozen features, 100 epochs, ACC and macro
one-vs-rest AUC):

1. :func:`select_hyperparameters` trains one probe per (learning rate, weight decay) on the
   ``"train"`` split and scores it on the ``"val"`` split. It refuses a ``"test"`` set outright.
2. :func:`fit_probe` trains the selected configuration on ``"train"`` and returns a
   :class:`LinearProbe`. It only accepts a :class:`Selection` issued by step 1 in this process.
3. :func:`evaluate_test_once` is the only function that reads a ``"test"`` set. A probe can be
   tested once, and all probes fitted from one :class:`Selection` share a single test evaluation,
   so neither the configuration nor the seed can be picked by looking at test numbers.

:func:`linear_probe` runs the three steps in order. The guards are about preventing accidents
(for example a checkpoint or learning rate chosen on test, as happened in the authors' code), not
about stopping a determined user: Python cannot hide the weights.

The probe is a single ``nn.Linear`` on features standardised with the *training* split's mean and
standard deviation, trained with cross-entropy, AdamW (default) or SGD with momentum, full-batch or
minibatch, and a per-step cosine learning-rate schedule. Initialisation and shuffling use a local
``torch.Generator``, so results are deterministic on CPU for a fixed seed (global RNG untouched).
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score
from torch import nn

from topo.trainer.eval.features import FeatureSet, check_disjoint

__all__ = [
    "DEFAULT_LRS",
    "DEFAULT_WEIGHT_DECAYS",
    "METRICS",
    "OPTIMIZERS",
    "GridPoint",
    "LinearProbe",
    "ProbeResult",
    "Selection",
    "TestSplitAccessError",
    "classification_metrics",
    "evaluate_test_once",
    "fit_probe",
    "linear_probe",
    "select_hyperparameters",
]

#: Optimisers the probe can be trained with.
OPTIMIZERS: tuple[str, ...] = ("adamw", "sgd")
#: Validation metrics hyper-parameters can be selected on.
METRICS: tuple[str, ...] = ("acc", "auc")
#: Default learning-rate grid (suited to AdamW on standardised features).
DEFAULT_LRS: tuple[float, ...] = (1e-3, 1e-2, 1e-1)
#: Default weight-decay grid (decoupled for AdamW, L2 for SGD; never applied to the bias).
DEFAULT_WEIGHT_DECAYS: tuple[float, ...] = (0.0, 1e-4, 1e-2)


class TestSplitAccessError(RuntimeError):
    """Raised when the test split is used where it must not be (selection, fitting, a second test)."""

    __test__ = False  # not a pytest test class, despite the name


# --------------------------------------------------------------------------------------------- metrics


def _macro_ovr_auc(y: np.ndarray, proba: np.ndarray) -> tuple[float, list[int], list[str]]:
    num_classes = proba.shape[1]
    present = np.unique(y)
    if present.size < 2:
        return (
            float("nan"),
            [int(c) for c in present],
            [f"only class(es) {present.tolist()} present in y_true; AUC is undefined (NaN)"],
        )
    if num_classes == 2:
        return float(roc_auc_score(y, proba[:, 1])), [0, 1], []
    if present.size == num_classes:
        auc = roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=np.arange(num_classes))
        return float(auc), list(range(num_classes)), []
    # scikit-learn's "ovr" raises when a class is absent; macro-average over the classes that are
    # present instead (each term is the same one-vs-rest AUC scikit-learn would compute).
    absent = sorted(set(range(num_classes)) - {int(c) for c in present})
    per_class = [roc_auc_score((y == c).astype(np.int64), proba[:, c]) for c in present]
    warning = (
        f"class(es) {absent} absent from y_true; AUC is the macro average over the "
        f"{present.size} present classes"
    )
    return float(np.mean(per_class)), [int(c) for c in present], [warning]


def classification_metrics(y_true: np.ndarray, proba: np.ndarray) -> dict[str, Any]:
    """Accuracy and macro one-vs-rest ROC AUC from class probabilities.

    AUC: binary problems use the positive-class probability ``proba[:, 1]``; multi-class problems
    use ``roc_auc_score(y, proba, multi_class="ovr", average="macro")``. If some class is absent from
    ``y_true`` the AUC is the mean one-vs-rest AUC over the *present* classes and a message is added
    to ``warnings``; with fewer than two present classes the AUC is NaN (with a warning).

    Args:
        y_true: Labels, shape ``(N,)``, integers in ``[0, C)``.
        proba: Class probabilities, shape ``(N, C)``, ``C >= 2``, rows summing to 1.

    Returns:
        ``{"n", "acc", "auc", "auc_classes", "warnings"}``; ``auc_classes`` lists the classes the AUC
        averages over.

    Raises:
        ValueError: On mismatched shapes, ``C < 2``, labels outside ``[0, C)``, or probabilities that are
            negative, non-finite or do not sum to 1 per row.
    """
    y = np.asarray(y_true)
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"proba must have shape (N, C) with C >= 2, got {p.shape}")
    if y.ndim != 1 or y.shape[0] != p.shape[0] or y.shape[0] == 0:
        raise ValueError(f"y_true must have shape (N,) = ({p.shape[0]},) with N >= 1, got {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y_true must be integer labels, got dtype {y.dtype}")
    if y.min() < 0 or y.max() >= p.shape[1]:
        raise ValueError(f"labels must lie in [0, {p.shape[1]}), got range [{y.min()}, {y.max()}]")
    if not np.isfinite(p).all() or (p < 0).any():
        raise ValueError("proba must be finite and non-negative")
    # No renormalisation: dividing by a row sum of 1 ± 1 ulp would perturb exactly tied scores and
    # change the AUC (ties count 1/2). scikit-learn applies the same tolerance check.
    if not np.allclose(p.sum(axis=1), 1.0):
        raise ValueError("rows of proba must sum to 1 (class probabilities, e.g. a softmax)")
    acc = float(np.mean(p.argmax(axis=1) == y))
    auc, classes, warnings = _macro_ovr_auc(y, p)
    return {"n": int(y.shape[0]), "acc": acc, "auc": auc, "auc_classes": classes, "warnings": warnings}


# -------------------------------------------------------------------------------------------- training


def _standardise_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(axis=0, dtype=np.float64)
    std = x.std(axis=0, dtype=np.float64)
    # A constant feature carries no information; dividing by 1 keeps it at 0 instead of inf/NaN.
    std = np.where(std < 1e-8, 1.0, std)
    return mean.astype(np.float32), std.astype(np.float32)


def _apply_standardise(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(((x - mean) / std).astype(np.float32, copy=False))


def _train_linear(
    x: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    *,
    lr: float,
    weight_decay: float,
    optimizer: str,
    batch_size: int | None,
    epochs: int,
    seed: int,
) -> nn.Linear:
    """Train ``nn.Linear(D, C)`` on standardised ``x`` (N, D) and labels ``y`` (N,)."""
    g = torch.Generator().manual_seed(seed)
    n, d = x.shape
    layer = nn.Linear(d, num_classes)
    with torch.no_grad():
        # Local generator: the result must not depend on (or disturb) the global torch RNG.
        layer.weight.normal_(0.0, 0.01, generator=g)
        layer.bias.zero_()
    groups = [
        {"params": [layer.weight], "weight_decay": weight_decay},
        {"params": [layer.bias], "weight_decay": 0.0},  # decaying a bias only biases the classes
    ]
    if optimizer == "adamw":
        opt: torch.optim.Optimizer = torch.optim.AdamW(groups, lr=lr)
    else:
        opt = torch.optim.SGD(groups, lr=lr, momentum=0.9)

    bs = n if batch_size is None else min(batch_size, n)
    steps_per_epoch = math.ceil(n / bs)
    total = epochs * steps_per_epoch
    step = 0
    with torch.enable_grad():
        for _ in range(epochs):
            order = torch.randperm(n, generator=g) if bs < n else None
            for i in range(steps_per_epoch):
                if order is None:
                    xb, yb = x, y
                else:
                    idx = order[i * bs : (i + 1) * bs]
                    xb, yb = x.index_select(0, idx), y.index_select(0, idx)
                lr_t = 0.5 * lr * (1.0 + math.cos(math.pi * step / total))
                for group in opt.param_groups:
                    group["lr"] = lr_t
                loss = F.cross_entropy(layer(xb), yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
    layer.eval()
    return layer


# ------------------------------------------------------------------------------------------ selection


@dataclass(frozen=True)
class GridPoint:
    """Validation result of one configuration of the selection grid.

    Attributes:
        lr: Peak learning rate.
        weight_decay: Weight decay.
        val_acc: Validation accuracy.
        val_auc: Validation macro one-vs-rest AUC (NaN if undefined).
        warnings: Metric warnings (e.g. classes absent from the validation split).
    """

    lr: float
    weight_decay: float
    val_acc: float
    val_auc: float
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary (NaN becomes ``None``)."""
        return _json_safe(
            {
                "lr": self.lr,
                "weight_decay": self.weight_decay,
                "val_acc": self.val_acc,
                "val_auc": self.val_auc,
                "warnings": list(self.warnings),
            }
        )


# Identity-keyed registries: an object counts as "issued" only if this module created it, so a
# Selection built by hand, by dataclasses.replace or by copy.deepcopy is refused by fit_probe.
_ISSUED_SELECTIONS: weakref.WeakKeyDictionary[Selection, dict[str, bool]] = weakref.WeakKeyDictionary()
_ISSUED_PROBES: weakref.WeakKeyDictionary[LinearProbe, dict[str, bool]] = weakref.WeakKeyDictionary()


@dataclass(frozen=True, eq=False)
class Selection:
    """A configuration chosen on the validation split by :func:`select_hyperparameters`.

    Only instances returned by :func:`select_hyperparameters` are accepted by :func:`fit_probe`.
    Identity-compared (``eq=False``) on purpose: two selections are never interchangeable.

    Attributes:
        lr: Selected peak learning rate.
        weight_decay: Selected weight decay.
        optimizer: ``"adamw"`` or ``"sgd"``.
        batch_size: Minibatch size, or ``None`` for full-batch training.
        epochs: Epochs used during selection (and by default by :func:`fit_probe`).
        seed: Seed used during selection (and by default by :func:`fit_probe`).
        metric: Validation metric the selection maximised (``"acc"`` or ``"auc"``).
        num_classes: Number of output classes ``C``.
        val_score: The selected configuration's value of ``metric`` on validation.
        grid: Every configuration tried, in grid order (learning rate outer, weight decay inner).
        train_fingerprint: Content hash of the training set the selection was made with.
        val_fingerprint: Content hash of the validation set.
    """

    lr: float
    weight_decay: float
    optimizer: str
    batch_size: int | None
    epochs: int
    seed: int
    metric: str
    num_classes: int
    val_score: float
    grid: tuple[GridPoint, ...]
    train_fingerprint: str = field(repr=False)
    val_fingerprint: str = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary of the selection and its grid."""
        return _json_safe(
            {
                "lr": self.lr,
                "weight_decay": self.weight_decay,
                "optimizer": self.optimizer,
                "batch_size": self.batch_size,
                "epochs": self.epochs,
                "seed": self.seed,
                "metric": self.metric,
                "num_classes": self.num_classes,
                "val_score": self.val_score,
                "grid": [p.to_dict() for p in self.grid],
                "train_fingerprint": self.train_fingerprint,
                "val_fingerprint": self.val_fingerprint,
            }
        )


def _check_number_grid(name: str, values: Sequence[float], *, positive: bool) -> tuple[float, ...]:
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a sequence of numbers, got {values!r}") from exc
    if not out:
        raise ValueError(f"{name} must not be empty")
    for v in out:
        if not math.isfinite(v) or (v <= 0 if positive else v < 0):
            bound = "> 0" if positive else ">= 0"
            raise ValueError(f"{name} values must be finite and {bound}, got {v!r}")
    return out


def _check_common(optimizer: str, batch_size: int | None, epochs: int, seed: int) -> None:
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size must be a positive int or None (full batch), got {batch_size!r}")
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")


def _require_split(fs: FeatureSet, expected: str, role: str) -> None:
    if not isinstance(fs, FeatureSet):
        raise ValueError(f"{role} must be a FeatureSet, got {type(fs).__name__}")
    if fs.split == "test":
        raise TestSplitAccessError(
            f"{role} has split 'test': the test split may only be read by evaluate_test_once(), "
            "after hyper-parameters were selected on 'val'"
        )
    if fs.split != expected:
        raise ValueError(f"{role} must have split {expected!r}, got {fs.split!r}")


def _check_labels(fs: FeatureSet, num_classes: int) -> None:
    top = int(fs.y.max())
    if top >= num_classes:
        raise ValueError(
            f"split {fs.split!r} has label {top} but num_classes={num_classes}; "
            "pass num_classes= the dataset's class count"
        )


def select_hyperparameters(
    train: FeatureSet,
    val: FeatureSet,
    *,
    lrs: Sequence[float] = DEFAULT_LRS,
    weight_decays: Sequence[float] = DEFAULT_WEIGHT_DECAYS,
    epochs: int = 100,
    seed: int = 0,
    metric: str = "acc",
    optimizer: str = "adamw",
    batch_size: int | None = 256,
    num_classes: int | None = None,
) -> Selection:
    """Choose the probe's learning rate and weight decay on the validation split.

    Every (lr, weight decay) pair is trained on ``train`` with the same seed and scored on ``val``.
    The best ``metric`` wins; ties go to the better other metric, then to the earlier grid entry
    (learning rate outer loop, weight decay inner loop). A NaN AUC ranks below every number.

    Args:
        train: Training features; ``split`` must be ``"train"``.
        val: Validation features; ``split`` must be ``"val"``, same feature dimension.
        lrs: Peak learning rates to try (each > 0).
        weight_decays: Weight decays to try (each >= 0).
        epochs: Training epochs per configuration (the paper uses 100).
        seed: Seed for initialisation and shuffling.
        metric: ``"acc"`` or ``"auc"``.
        optimizer: ``"adamw"`` or ``"sgd"`` (momentum 0.9).
        batch_size: Minibatch size, or ``None`` for full-batch gradient descent.
        num_classes: Number of classes ``C``; default ``max(label in train or val) + 1``. Pass the
            dataset's class count when a class may be missing from both splits.

    Returns:
        The issued :class:`Selection` (including the full validation grid).

    Raises:
        TestSplitAccessError: If either set is the test split.
        ValueError: On wrong split names, mismatched dimensions, shared samples, bad options, or
            ``metric="auc"`` when the validation AUC is undefined for every configuration.
    """
    _require_split(train, "train", "train")
    _require_split(val, "val", "val")
    if train.dim != val.dim:
        raise ValueError(f"train has feature dimension {train.dim} but val has {val.dim}")
    check_disjoint(train, val)
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    _check_common(optimizer, batch_size, epochs, seed)
    lr_grid = _check_number_grid("lrs", lrs, positive=True)
    wd_grid = _check_number_grid("weight_decays", weight_decays, positive=False)
    if num_classes is None:
        num_classes = int(max(train.y.max(), val.y.max())) + 1
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an int >= 2, got {num_classes!r}")
    _check_labels(train, num_classes)
    _check_labels(val, num_classes)

    mean, std = _standardise_stats(train.x)
    xt = _apply_standardise(train.x, mean, std)
    yt = torch.from_numpy(np.array(train.y))
    xv = _apply_standardise(val.x, mean, std)

    grid: list[GridPoint] = []
    for lr in lr_grid:
        for wd in wd_grid:
            layer = _train_linear(
                xt,
                yt,
                num_classes,
                lr=lr,
                weight_decay=wd,
                optimizer=optimizer,
                batch_size=batch_size,
                epochs=epochs,
                seed=seed,
            )
            with torch.no_grad():
                proba = torch.softmax(layer(xv).double(), dim=1).numpy()
            m = classification_metrics(val.y, proba)
            grid.append(GridPoint(lr, wd, m["acc"], m["auc"], tuple(m["warnings"])))

    def _rank(v: float) -> float:
        return -math.inf if math.isnan(v) else v

    primary = [p.val_acc if metric == "acc" else p.val_auc for p in grid]
    secondary = [p.val_auc if metric == "acc" else p.val_acc for p in grid]
    if all(math.isnan(v) for v in primary):
        raise ValueError(
            "validation AUC is undefined for every configuration (fewer than two classes in val); "
            "use metric='acc'"
        )
    best = max(range(len(grid)), key=lambda i: (_rank(primary[i]), _rank(secondary[i]), -i))
    sel = Selection(
        lr=grid[best].lr,
        weight_decay=grid[best].weight_decay,
        optimizer=optimizer,
        batch_size=batch_size,
        epochs=epochs,
        seed=seed,
        metric=metric,
        num_classes=num_classes,
        val_score=primary[best],
        grid=tuple(grid),
        train_fingerprint=train.fingerprint,
        val_fingerprint=val.fingerprint,
    )
    _ISSUED_SELECTIONS[sel] = {"tested": False}
    return sel


# ------------------------------------------------------------------------------------------------ probe


class LinearProbe:
    """A fitted linear classifier on standardised features. Produced only by :func:`fit_probe`.

    Attributes:
        selection: The :class:`Selection` it was fitted from.
        mean: Training-split feature mean, shape ``(D,)``, float32.
        std: Training-split feature standard deviation (constant features: 1), shape ``(D,)``.
        layer: The trained ``nn.Linear(D, C)`` (eval mode).
        epochs: Epochs it was trained for.
        seed: Seed it was trained with.
    """

    def __init__(
        self,
        *,
        selection: Selection,
        mean: np.ndarray,
        std: np.ndarray,
        layer: nn.Linear,
        epochs: int,
        seed: int,
        train_split: FeatureSet,
    ) -> None:
        self.selection = selection
        self.mean = mean
        self.std = std
        self.layer = layer
        self.epochs = epochs
        self.seed = seed
        # Kept (read-only views, no copy) so the test set can be checked for overlap with train.
        self._train = train_split

    @property
    def num_classes(self) -> int:
        """Number of output classes ``C``."""
        return int(self.layer.out_features)

    @property
    def dim(self) -> int:
        """Input feature dimension ``D``."""
        return int(self.layer.in_features)

    @property
    def tested(self) -> bool:
        """Whether :func:`evaluate_test_once` has already been called on this probe."""
        state = _ISSUED_PROBES.get(self)
        return bool(state and state["tested"])

    def _proba(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            logits = self.layer(_apply_standardise(x, self.mean, self.std))
            return torch.softmax(logits.double(), dim=1).numpy()

    def _check_input(self, fs: FeatureSet) -> None:
        if not isinstance(fs, FeatureSet):
            raise ValueError(f"expected a FeatureSet, got {type(fs).__name__}")
        if fs.dim != self.dim:
            raise ValueError(
                f"split {fs.split!r} has feature dimension {fs.dim}, the probe expects {self.dim}"
            )
        _check_labels(fs, self.num_classes)

    def predict_proba(self, fs: FeatureSet) -> np.ndarray:
        """Class probabilities for a train or val set.

        Args:
            fs: Features with split ``"train"`` or ``"val"``.

        Returns:
            Probabilities, shape ``(N, C)``, float64, rows sum to 1.

        Raises:
            TestSplitAccessError: For the test split (use :func:`evaluate_test_once`).
        """
        if isinstance(fs, FeatureSet) and fs.split == "test":
            raise TestSplitAccessError("the test split is only readable through evaluate_test_once()")
        self._check_input(fs)
        return self._proba(fs.x)

    def evaluate(self, fs: FeatureSet) -> dict[str, Any]:
        """Metrics (see :func:`classification_metrics`) on a train or val set, plus ``"split"``.

        Args:
            fs: Features with split ``"train"`` or ``"val"``.

        Returns:
            ``{"split", "n", "acc", "auc", "auc_classes", "warnings"}``.

        Raises:
            TestSplitAccessError: For the test split (use :func:`evaluate_test_once`).
        """
        proba = self.predict_proba(fs)
        return {"split": fs.split, **classification_metrics(fs.y, proba)}

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe description (hyper-parameters, not weights)."""
        return {
            "lr": self.selection.lr,
            "weight_decay": self.selection.weight_decay,
            "optimizer": self.selection.optimizer,
            "batch_size": self.selection.batch_size,
            "epochs": self.epochs,
            "seed": self.seed,
            "num_classes": self.num_classes,
            "dim": self.dim,
        }

    def __repr__(self) -> str:
        return (
            f"LinearProbe(dim={self.dim}, num_classes={self.num_classes}, lr={self.selection.lr}, "
            f"weight_decay={self.selection.weight_decay}, epochs={self.epochs}, seed={self.seed}, "
            f"tested={self.tested})"
        )


def fit_probe(
    train: FeatureSet, selection: Selection, *, epochs: int | None = None, seed: int | None = None
) -> LinearProbe:
    """Train the selected configuration on the training split.

    With the default ``epochs``/``seed`` (those of the selection) the result is exactly the model
    that was scored during selection, so its validation metrics reproduce the grid entry.

    Args:
        train: The same training set the selection was made with (checked by content hash).
        selection: A :class:`Selection` returned by :func:`select_hyperparameters` in this process.
        epochs: Training epochs; default ``selection.epochs``.
        seed: Seed for initialisation and shuffling; default ``selection.seed``.

    Returns:
        The fitted :class:`LinearProbe`.

    Raises:
        TestSplitAccessError: If ``train`` is the test split, or ``selection`` was not issued by
            :func:`select_hyperparameters` (hand-made, replaced or copied).
        ValueError: If ``train`` is not the set the selection was made with, or on bad options.
    """
    _require_split(train, "train", "train")
    if not isinstance(selection, Selection) or selection not in _ISSUED_SELECTIONS:
        raise TestSplitAccessError(
            "fit_probe needs a Selection returned by select_hyperparameters() in this process; "
            "hand-made, replaced or copied selections are refused"
        )
    if train.fingerprint != selection.train_fingerprint:
        raise ValueError("train differs from the training set this selection was made with")
    epochs = selection.epochs if epochs is None else epochs
    seed = selection.seed if seed is None else seed
    _check_common(selection.optimizer, selection.batch_size, epochs, seed)

    mean, std = _standardise_stats(train.x)
    layer = _train_linear(
        _apply_standardise(train.x, mean, std),
        torch.from_numpy(np.array(train.y)),
        selection.num_classes,
        lr=selection.lr,
        weight_decay=selection.weight_decay,
        optimizer=selection.optimizer,
        batch_size=selection.batch_size,
        epochs=epochs,
        seed=seed,
    )
    probe = LinearProbe(
        selection=selection, mean=mean, std=std, layer=layer, epochs=epochs, seed=seed, train_split=train
    )
    _ISSUED_PROBES[probe] = {"tested": False}
    return probe


def evaluate_test_once(probe: LinearProbe, test: FeatureSet) -> dict[str, Any]:
    """Evaluate a fitted probe on the test split — once per probe and once per selection.

    Args:
        probe: A :class:`LinearProbe` returned by :func:`fit_probe`.
        test: Features with split ``"test"``.

    Returns:
        ``{"split": "test", "n", "acc", "auc", "auc_classes", "warnings"}`` (see
        :func:`classification_metrics`).

    Raises:
        TestSplitAccessError: If the probe was not produced by :func:`fit_probe`, was already tested,
            or another probe fitted from the same selection was already tested.
        ValueError: If ``test`` is not the test split, has another feature dimension, labels outside
            the probe's classes, or shares samples with the training split.
    """
    if not isinstance(probe, LinearProbe) or probe not in _ISSUED_PROBES:
        raise TestSplitAccessError("evaluate_test_once needs a LinearProbe returned by fit_probe()")
    if not isinstance(test, FeatureSet) or test.split != "test":
        got = test.split if isinstance(test, FeatureSet) else type(test).__name__
        raise ValueError(f"evaluate_test_once takes the 'test' split, got {got!r}; use probe.evaluate()")
    probe_state = _ISSUED_PROBES[probe]
    sel_state = _ISSUED_SELECTIONS.get(probe.selection)
    if probe_state["tested"]:
        raise TestSplitAccessError("this probe was already evaluated on the test split")
    if sel_state is None or sel_state["tested"]:
        raise TestSplitAccessError(
            "a probe fitted from this selection was already evaluated on the test split; refitting "
            "(e.g. with another seed) and testing again would allow choosing on test"
        )
    probe._check_input(test)
    check_disjoint(probe._train, test)
    # Mark before computing: the numbers must not be obtainable twice, even after an exception.
    probe_state["tested"] = True
    sel_state["tested"] = True
    return {"split": "test", **classification_metrics(test.y, probe._proba(test.x))}


# ---------------------------------------------------------------------------------------------- driver


@dataclass(frozen=True)
class ProbeResult:
    """Outcome of :func:`linear_probe`.

    Attributes:
        selection: The configuration chosen on validation (with the full grid).
        train: Metrics of the final probe on the training split.
        val: Metrics of the final probe on the validation split (equals the selected grid entry).
        test: Metrics of the final probe on the test split (computed once).
    """

    selection: Selection
    train: dict[str, Any]
    val: dict[str, Any]
    test: dict[str, Any]

    @property
    def grid(self) -> tuple[GridPoint, ...]:
        """Validation metrics of every configuration tried."""
        return self.selection.grid

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary (NaN becomes ``None``)."""
        return _json_safe(
            {"selection": self.selection.to_dict(), "train": self.train, "val": self.val, "test": self.test}
        )


def linear_probe(train: FeatureSet, val: FeatureSet, test: FeatureSet, **kw: Any) -> ProbeResult:
    """Full protocol: select on val, fit on train, evaluate on test once.

    Args:
        train: Split ``"train"``.
        val: Split ``"val"``.
        test: Split ``"test"``.
        **kw: Forwarded to :func:`select_hyperparameters` (``lrs``, ``weight_decays``, ``epochs``,
            ``seed``, ``metric``, ``optimizer``, ``batch_size``, ``num_classes``).

    Returns:
        A :class:`ProbeResult`.

    Raises:
        TestSplitAccessError: If ``train`` or ``val`` is the test split.
        ValueError: On wrong split names, shared samples between splits, or bad options.
    """
    _require_split(train, "train", "train")
    _require_split(val, "val", "val")
    if not isinstance(test, FeatureSet) or test.split != "test":
        raise ValueError(f"test must be a FeatureSet with split 'test', got {test!r}")
    check_disjoint(val, test)
    selection = select_hyperparameters(train, val, **kw)
    probe = fit_probe(train, selection)
    return ProbeResult(
        selection=selection,
        train=probe.evaluate(train),
        val=probe.evaluate(val),
        test=evaluate_test_once(probe, test),
    )


def _json_safe(obj: Any) -> Any:
    """Recursively turn tuples into lists, numpy scalars into Python numbers and NaN/inf into None."""
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
