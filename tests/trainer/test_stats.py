from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats as sps

from topo.trainer.eval.stats import PairedTTest, mean_std, paired_ttest

BASE = [0.801, 0.815, 0.792, 0.808, 0.799]
TOPO = [0.822, 0.829, 0.801, 0.834, 0.811]


def test_mean_std_uses_sample_std() -> None:
    mean, std = mean_std(BASE)
    assert mean == pytest.approx(np.mean(BASE), abs=1e-15)
    assert std == pytest.approx(np.std(BASE, ddof=1), abs=1e-15)
    assert std != pytest.approx(np.std(BASE, ddof=0), abs=1e-6)
    m1, s1 = mean_std([0.5])
    assert m1 == 0.5 and math.isnan(s1)
    with pytest.raises(ValueError, match="empty"):
        mean_std([])
    with pytest.raises(ValueError, match="one-dimensional"):
        mean_std(np.zeros((2, 2)))


def test_paired_ttest_equals_scipy() -> None:
    res = paired_ttest(BASE, TOPO)
    ref = sps.ttest_rel(TOPO, BASE)
    t, p = res  # unpacks like a (t, p) tuple
    assert t == pytest.approx(ref.statistic, rel=1e-12)
    assert p == pytest.approx(ref.pvalue, rel=1e-12)
    assert t > 0 and 0 < p < 0.05  # TOPO is larger on every seed
    assert res.n == 5 and res.reason is None
    assert res.mean_diff == pytest.approx(np.mean(np.subtract(TOPO, BASE)))
    # Swapping the arguments flips the sign of t and keeps p.
    t2, p2 = paired_ttest(TOPO, BASE)
    assert t2 == pytest.approx(-t) and p2 == pytest.approx(p)


@pytest.mark.parametrize(
    ("a", "b", "reason_part", "t_kind"),
    [
        ([], [], "n=0", "nan"),
        ([0.8], [0.9], "n=1", "nan"),
        ([0.8, 0.7, 0.9], [0.8, 0.7, 0.9], "zero", "nan"),
        ([0.1, 0.2, 0.3], [0.2, 0.3, 0.4], "zero variance", "+inf"),  # equal up to rounding error
        ([0.3, 0.4, 0.5], [0.2, 0.3, 0.4], "zero variance", "-inf"),
        ([0.8, float("nan"), 0.9], [0.8, 0.7, 0.9], "non-finite", "nan"),
    ],
)
def test_degenerate_inputs_give_nan_with_reason(a, b, reason_part, t_kind) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning from scipy/numpy either
        res = paired_ttest(a, b)
    assert isinstance(res, PairedTTest)
    assert math.isnan(res.p)
    assert res.reason is not None and reason_part in res.reason
    if t_kind == "nan":
        assert math.isnan(res.t)
    else:
        assert res.t == (math.inf if t_kind == "+inf" else -math.inf)


def test_paired_ttest_rejects_unpaired_lengths() -> None:
    with pytest.raises(ValueError, match="same length"):
        paired_ttest([0.1, 0.2], [0.1, 0.2, 0.3])
