from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from topo.trainer.eval.features import FeatureSet, load_feature_meta, load_features, save_features
from topo.trainer.eval.probe import (
    LinearProbe,
    TestSplitAccessError,
    classification_metrics,
    evaluate_test_once,
    fit_probe,
    linear_probe,
    select_hyperparameters,
)


def gaussian(n: int, split: str, *, seed: int, n_classes: int = 3, dim: int = 8, sep: float = 4.0) -> FeatureSet:
    """Classes are isotropic Gaussians (sigma 1) whose means differ by `sep` along one axis each."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    means = np.zeros((n_classes, dim))
    means[np.arange(n_classes), np.arange(n_classes)] = sep
    x = means[y] + rng.normal(size=(n, dim))
    return FeatureSet(split, x.astype(np.float32), y, sample_ids=np.arange(n) + 100_000 * seed)


@pytest.fixture(scope="module")
def splits() -> tuple[FeatureSet, FeatureSet, FeatureSet]:
    return gaussian(400, "train", seed=1), gaussian(200, "val", seed=2), gaussian(400, "test", seed=3)


# ------------------------------------------------------------------------------------------ FeatureSet


def test_featureset_validates_and_is_read_only() -> None:
    x = np.zeros((3, 2), dtype=np.float64)
    fs = FeatureSet("train", x, np.array([0.0, 1.0, 1.0]))
    assert fs.x.dtype == np.float32 and fs.y.dtype == np.int64
    with pytest.raises(ValueError):
        fs.x[0, 0] = 1.0
    with pytest.raises(ValueError, match="split must be one of"):
        FeatureSet("validation", x, np.zeros(3, dtype=int))
    with pytest.raises(ValueError, match="non-finite"):
        FeatureSet("train", np.array([[0.0, np.nan]]), np.array([0]))
    with pytest.raises(ValueError, match=r"shape \(N,\)"):
        FeatureSet("train", x, np.zeros(2, dtype=int))
    with pytest.raises(ValueError, match="integer class labels"):
        FeatureSet("train", x, np.array([0.0, 0.5, 1.0]))
    with pytest.raises(ValueError, match="distinct"):
        FeatureSet("train", x, np.zeros(3, dtype=int), sample_ids=np.array([1, 1, 2]))


def test_save_load_roundtrip_without_pickle(tmp_path, splits) -> None:
    train, val, _ = splits
    str_ids = FeatureSet("val", val.x, val.y, sample_ids=np.array([f"img{i}" for i in range(val.n)]))
    save_features(tmp_path / "f", [train, str_ids], meta={"encoder": "resnet18", "seed": 3})
    loaded = load_features(tmp_path / "f")
    assert list(loaded) == ["train", "val"]
    for orig in (train, str_ids):
        got = loaded[orig.split]
        assert np.array_equal(got.x, orig.x) and np.array_equal(got.y, orig.y)
        assert np.array_equal(got.sample_ids, orig.sample_ids)
    assert load_feature_meta(tmp_path / "f") == {"encoder": "resnet18", "seed": 3}
    with pytest.raises(FileExistsError):
        save_features(tmp_path / "f", [train])
    # Corrupt one array: the recorded fingerprint must catch it.
    np.save(tmp_path / "f" / "train_y.npy", (np.asarray(train.y) + 1) % 3)
    with pytest.raises(ValueError, match="fingerprint"):
        load_features(tmp_path / "f")


# ------------------------------------------------------------------------------------------------ probe


def test_probe_recovers_linear_separation(splits) -> None:
    train, val, test = splits
    res = linear_probe(train, val, test)
    assert res.test["acc"] > 0.95
    assert res.test["auc"] > 0.98
    assert res.test["n"] == test.n and res.test["split"] == "test"
    # The default grid is wide (1e-4 ... 1e2 in C) and every point was scored on val.
    cs = [p.c for p in res.grid]
    assert min(cs) == pytest.approx(1e-4) and max(cs) == pytest.approx(1e2) and len(cs) >= 7


def _sklearn_reference(train: FeatureSet, val: FeatureSet, test: FeatureSet, cs) -> float:
    """An independent scikit-learn pipeline: StandardScaler + LogisticRegression, C chosen on val ACC."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    best, best_acc = None, -1.0
    for c in cs:  # increasing C; ">" keeps the smaller C on ties
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000))
        model.fit(train.x, train.y)
        acc = model.score(val.x, val.y)
        if acc > best_acc:
            best, best_acc = model, acc
    return float(best.score(test.x, test.y))


@pytest.mark.parametrize("n_classes,sep", [(2, 0.9), (4, 1.2)])
def test_probe_matches_an_independent_sklearn_fit(n_classes: int, sep: float) -> None:
    # Overlapping classes in 64 dimensions with few samples: regularisation matters and ACC is far from 1.
    kw = {"n_classes": n_classes, "dim": 64, "sep": sep}
    train, val, test = (
        gaussian(150, "train", seed=11, **kw),
        gaussian(150, "val", seed=12, **kw),
        gaussian(600, "test", seed=13, **kw),
    )
    cs = tuple(np.logspace(-4, 2, 13))
    res = linear_probe(train, val, test, cs=cs)
    ref = _sklearn_reference(train, val, test, cs)
    assert 1 / n_classes + 0.1 < ref < 0.97  # not a trivial problem, so agreement is informative
    assert abs(res.test["acc"] - ref) <= 0.005


def test_report_carries_majority_chance_and_loud_warnings() -> None:
    rng = np.random.default_rng(5)

    # Pure noise features, 80 % majority class: the probe cannot beat the majority rate.
    def noise(n, split, seed):
        r = np.random.default_rng(seed)
        return FeatureSet(split, r.normal(size=(n, 16)), (r.random(n) < 0.2).astype(int), np.arange(n) + seed * 10_000)

    res = linear_probe(noise(200, "train", 1), noise(100, "val", 2), noise(300, "test", 3), num_classes=3)
    ref = res.references["test"]
    assert ref["majority_acc"] == pytest.approx(np.mean(noise(300, "test", 3).y == 0))
    assert ref["chance_auc"] == 0.5 and ref["classes_present"] == 2 and ref["num_classes"] == 3
    text = " ".join(res.warnings)
    assert "class(es) [2] absent from the train split" in text
    assert "absent from the test split" in text
    if res.test["acc"] <= ref["majority_acc"]:
        assert "not above the majority-class rate" in text
    assert res.to_dict()["references"]["val"]["n"] == 100
    # A clean problem raises no warning.
    assert rng is not None
    clean = linear_probe(gaussian(300, "train", seed=1), gaussian(100, "val", seed=2), gaussian(300, "test", seed=3))
    assert clean.warnings == ()


def test_selection_refuses_test_split(splits) -> None:
    train, val, test = splits
    with pytest.raises(TestSplitAccessError):
        select_hyperparameters(train, test)
    with pytest.raises(TestSplitAccessError):
        select_hyperparameters(FeatureSet("test", train.x, train.y), val)
    assert issubclass(TestSplitAccessError, RuntimeError)
    # Other wrong names are user errors, not test-split access.
    with pytest.raises(ValueError, match="must have split 'train'"):
        select_hyperparameters(val, val)
    with pytest.raises(ValueError, match="metric must be one of"):
        select_hyperparameters(train, val, metric="f1")
    with pytest.raises(ValueError, match="cs values must be finite and > 0"):
        select_hyperparameters(train, val, cs=(0.0,))
    with pytest.raises(ValueError, match="single class"):
        select_hyperparameters(FeatureSet("train", train.x, np.zeros(train.n, dtype=int)), val)


def test_probe_cannot_be_tested_twice(splits) -> None:
    train, val, test = splits
    sel = select_hyperparameters(train, val, cs=(1.0,))
    probe = fit_probe(train, sel)
    with pytest.raises(TestSplitAccessError):
        probe.predict_proba(test)
    with pytest.raises(ValueError, match="'test' split"):
        evaluate_test_once(probe, val)
    first = evaluate_test_once(probe, test)
    assert probe.tested and 0.0 <= first["acc"] <= 1.0
    with pytest.raises(TestSplitAccessError):
        evaluate_test_once(probe, test)
    # Refitting from the same selection must not buy a second look at test.
    refit = fit_probe(train, sel)
    with pytest.raises(TestSplitAccessError):
        evaluate_test_once(refit, test)
    # Val evaluation stays available.
    assert refit.evaluate(val)["split"] == "val"


def test_only_issued_selections_and_probes_are_accepted(splits) -> None:
    train, val, test = splits
    sel = select_hyperparameters(train, val, cs=(0.1, 1.0))
    with pytest.raises(TestSplitAccessError):
        fit_probe(train, dataclasses.replace(sel, c=0.5))
    with pytest.raises(TestSplitAccessError):
        fit_probe(train, copy.deepcopy(sel))
    with pytest.raises(ValueError, match="differs from the training set"):
        fit_probe(FeatureSet("train", val.x, val.y), sel)
    probe = fit_probe(train, sel)
    forged = LinearProbe(
        selection=sel, mean=probe.mean, std=probe.std, model=probe.model, converged=True, train_split=train
    )
    with pytest.raises(TestSplitAccessError):
        evaluate_test_once(forged, test)


def test_linear_probe_selects_on_val_even_when_test_disagrees(splits) -> None:
    train, val, test = splits
    # Flipped labels on test: the well-fitted C is worst there, a nearly constant probe (tiny C) would do
    # better on test. Selection must follow val regardless.
    bin_train = FeatureSet("train", train.x, (np.asarray(train.y) == 0).astype(int))
    bin_val = FeatureSet("val", val.x, (np.asarray(val.y) == 0).astype(int))
    flipped_test = FeatureSet("test", test.x, (np.asarray(test.y) != 0).astype(int))
    grid = {"cs": (1e-6, 1.0)}

    res = linear_probe(bin_train, bin_val, flipped_test, **grid)
    val_accs = [p.val_acc for p in res.grid]
    assert res.selection.c == res.grid[int(np.argmax(val_accs))].c == 1.0
    assert res.val["acc"] == max(val_accs)
    assert any("not above the majority-class rate" in w for w in res.warnings)

    # Counterfactual: had the test data been used for selection, the other C would have won.
    as_val = FeatureSet("val", flipped_test.x, flipped_test.y)
    cheat = select_hyperparameters(bin_train, as_val, **grid)
    assert cheat.c == 1e-6
    assert res.test["acc"] < max(p.val_acc for p in cheat.grid)


def test_probe_is_deterministic_and_reproduces_the_grid(splits) -> None:
    train, val, _ = splits
    kw = {"cs": (0.01, 0.1, 1.0)}
    s1 = select_hyperparameters(train, val, **kw)
    s2 = select_hyperparameters(train, val, **kw)
    assert s1.to_dict() == s2.to_dict()
    p1, p2 = fit_probe(train, s1), fit_probe(train, s2)
    assert np.array_equal(p1.model.coef_, p2.model.coef_)
    # The final probe is exactly the model scored during selection.
    chosen = next(p for p in s1.grid if p.c == s1.c)
    assert p1.evaluate(val)["acc"] == chosen.val_acc
    # Standardisation statistics come from the training split.
    np.testing.assert_allclose(p1.mean, np.asarray(train.x).mean(axis=0), rtol=1e-5, atol=1e-5)


def test_auc_selection(splits) -> None:
    train, val, test = splits
    res = linear_probe(train, val, test, cs=(0.01, 1.0), metric="auc")
    assert res.selection.val_score == max(p.val_auc for p in res.grid)
    assert res.test["acc"] > 0.9


def test_shared_samples_between_splits_are_refused(splits) -> None:
    train, val, test = splits
    leaky = FeatureSet("test", test.x, test.y, sample_ids=np.asarray(train.sample_ids)[: test.n])
    with pytest.raises(ValueError, match="share"):
        linear_probe(train, val, leaky, cs=(1.0,))
    with pytest.raises(ValueError, match="identical"):
        linear_probe(train, val, FeatureSet("test", val.x, val.y))


# ---------------------------------------------------------------------------------------------- metrics


def test_metrics_with_an_absent_class() -> None:
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(4), size=60)
    y = rng.integers(0, 4, 60)
    full = classification_metrics(y, proba)
    ref = roc_auc_score(y, proba, multi_class="ovr", average="macro")
    assert full["auc"] == pytest.approx(ref, abs=1e-12) and full["warnings"] == []

    y_missing = np.where(y == 3, 0, y)  # class 3 absent
    part = classification_metrics(y_missing, proba)
    expected = np.mean([roc_auc_score(y_missing == c, proba[:, c]) for c in (0, 1, 2)])
    assert part["auc"] == pytest.approx(expected, abs=1e-12)
    assert part["auc_classes"] == [0, 1, 2]
    assert any("absent" in w for w in part["warnings"])

    single = classification_metrics(np.zeros(60, dtype=int), proba)
    assert np.isnan(single["auc"]) and single["warnings"]
    with pytest.raises(ValueError, match="labels must lie"):
        classification_metrics(np.full(60, 4), proba)
