"""Is a dataset's label carried by topology? Logistic regression on raw pixels vs on simple diagram features.

Run before any training on a topology benchmark (``synthetic-betti``): if the diagram line is not far above the
pixel line, the dataset is not doing its job. Diagrams are computed on the whole image with the store's filtration
(:mod:`topo.pipeline.persistence`), so the check needs no store.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from topo.pipeline.persistence import FiltrationSpec, diagrams, filtration

THRESHOLDS = (0.05, 0.1, 0.15, 0.2, 0.3, 0.4)


def pd_features(images: np.ndarray, spec: FiltrationSpec | None = None) -> np.ndarray:
    """Per image: for H0 and H1, the count of pairs above each persistence threshold, total and top-4 persistence."""
    spec = spec or FiltrationSpec()
    filts = [filtration(im if im.ndim == 3 else im[..., None], None, spec) for im in images]
    rows = []
    for h0, h1 in diagrams(filts):
        feats: list[float] = []
        for d in (h0, h1):
            p = np.sort(d[:, 1] - d[:, 0])[::-1] if len(d) else np.zeros(0)
            feats += [float((p > t).sum()) for t in THRESHOLDS]
            feats += [float(p.sum())] + [float(p[i]) if i < len(p) else 0.0 for i in range(4)]
        rows.append(feats)
    return np.asarray(rows, dtype=np.float64)


@dataclass(frozen=True)
class CueCheck:
    """Test accuracy of a logistic regression on each cue, with the chance level (majority class)."""

    pixel_acc: float
    pd_acc: float
    chance: float
    n_train: int
    n_test: int

    @property
    def gap(self) -> float:
        return self.pd_acc - self.pixel_acc

    def lines(self) -> list[str]:
        return [
            f"logistic regression, {self.n_train} train / {self.n_test} test images",
            f"  raw pixels      ACC {100 * self.pixel_acc:5.1f}",
            f"  diagram feats   ACC {100 * self.pd_acc:5.1f}",
            f"  chance          ACC {100 * self.chance:5.1f}",
            f"  diagram - pixel     {100 * self.gap:+5.1f} points",
        ]


def _logreg_acc(x_tr: np.ndarray, y_tr: np.ndarray, x_te: np.ndarray, y_te: np.ndarray) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0))
    clf.fit(x_tr, y_tr)
    return float((clf.predict(x_te) == y_te).mean())


def cue_check(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, spec: FiltrationSpec | None = None
) -> CueCheck:
    """Fit on train, score on test, once per cue (fixed hyper-parameters: nothing is chosen on test)."""
    flat = lambda x: x.reshape(len(x), -1).astype(np.float64) / 255.0  # noqa: E731
    pixel = _logreg_acc(flat(x_train), y_train, flat(x_test), y_test)
    pd = _logreg_acc(pd_features(x_train, spec), y_train, pd_features(x_test, spec), y_test)
    chance = float(np.bincount(y_test).max() / max(1, len(y_test)))
    return CueCheck(pixel, pd, chance, len(y_train), len(y_test))
