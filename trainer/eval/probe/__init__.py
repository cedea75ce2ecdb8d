"""Linear probe on frozen features, in three steps: search, fit, report.

The regularisation is searched on val (:mod:`.search`), the probe fitted on train (:mod:`.fit`), the test
split read once and reported with majority-class and chance reference points (:mod:`.report`).

The probe is standardised features + L2 multinomial logistic regression (scikit-learn, L-BFGS) with ``C``
chosen on the validation split over a wide grid (1e-4 … 1e2).
"""

from topo.trainer.eval.probe.fit import LinearProbe, evaluate_test_once, fit_probe
from topo.trainer.eval.probe.metrics import (
    CHANCE_AUC,
    TestSplitAccessError,
    classification_metrics,
    probe_warnings,
    split_reference,
)
from topo.trainer.eval.probe.report import ProbeResult, linear_probe
from topo.trainer.eval.probe.search import DEFAULT_CS, METRICS, GridPoint, Selection, select_hyperparameters

__all__ = [
    "CHANCE_AUC",
    "DEFAULT_CS",
    "METRICS",
    "GridPoint",
    "LinearProbe",
    "ProbeResult",
    "Selection",
    "TestSplitAccessError",
    "classification_metrics",
    "evaluate_test_once",
    "fit_probe",
    "linear_probe",
    "probe_warnings",
    "select_hyperparameters",
    "split_reference",
]
