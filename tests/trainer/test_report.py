from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy import stats as sps
from sklearn.metrics import roc_auc_score
from torch import nn

from topo.trainer.eval.features import FeatureSet
from topo.trainer.eval.probe import classification_metrics, linear_probe
from topo.trainer.eval.report import (
    AVG,
    RunResult,
    build_table,
    cost_table_markdown,
    format_p,
    from_json,
    gate_weight_summary,
    load_run_results,
    model_cost,
    plot_gate_weights,
    run_result_from_probe,
    save_run_results,
    to_json,
    to_markdown,
)

DATASETS = ("BreastMNIST", "PneumoniaMNIST", "DermaMNIST")
SEEDS = (0, 1, 2, 3, 4)


def synthetic_results(methods=("SimCLR", "BYOL"), seeds=SEEDS) -> list[RunResult]:
    rng = np.random.default_rng(42)
    out = []
    for m in methods:
        for di, d in enumerate(DATASETS):
            for s in seeds:
                base_acc = 0.70 + 0.05 * di + rng.normal(0, 0.01)
                base_auc = 0.80 + 0.03 * di + rng.normal(0, 0.01)
                out.append(RunResult(d, m, "baseline", s, base_acc, base_auc, {"epochs": 100}))
                out.append(
                    RunResult(
                        d,
                        m,
                        "topocl",
                        s,
                        base_acc + 0.01 + rng.normal(0, 0.01),
                        base_auc + 0.005 + rng.normal(0, 0.005),
                    )
                )
    return out


def values(results, method, dataset, variant, metric):
    rows = sorted(
        (r for r in results if (r.method, r.dataset, r.variant) == (method, dataset, variant)),
        key=lambda r: r.seed,
    )
    return [getattr(r, metric) for r in rows]


# ---------------------------------------------------------------------------------------------- metrics


def test_auc_matches_scikit_learn() -> None:
    y = np.array([0, 1, 2, 2, 1, 0, 2, 1, 0, 1])
    proba = np.array(
        [
            [0.7, 0.2, 0.1],
            [0.3, 0.4, 0.3],
            [0.1, 0.3, 0.6],
            [0.2, 0.2, 0.6],
            [0.5, 0.3, 0.2],
            [0.6, 0.3, 0.1],
            [0.3, 0.3, 0.4],
            [0.2, 0.5, 0.3],
            [0.4, 0.4, 0.2],
            [0.1, 0.8, 0.1],
        ]
    )
    m = classification_metrics(y, proba)
    assert m["auc"] == pytest.approx(roc_auc_score(y, proba, multi_class="ovr", average="macro"), abs=1e-12)
    assert m["acc"] == pytest.approx(np.mean(proba.argmax(1) == y))
    yb = (y == 1).astype(int)
    pb = np.stack([1 - proba[:, 1], proba[:, 1]], axis=1)
    assert classification_metrics(yb, pb)["auc"] == pytest.approx(roc_auc_score(yb, proba[:, 1]), abs=1e-12)


# ---------------------------------------------------------------------------------------------- Table 3


def test_table_statistics_match_numpy_and_scipy() -> None:
    results = synthetic_results()
    table = build_table(results)
    assert table.datasets == DATASETS and [r.method for r in table.rows] == ["SimCLR", "BYOL"]
    for m in ("SimCLR", "BYOL"):
        for d in DATASETS:
            cell = table.cell(m, d)
            for metric in ("acc", "auc"):
                b = values(results, m, d, "baseline", metric)
                t = values(results, m, d, "topocl", metric)
                assert getattr(cell.baseline, f"{metric}_mean") == pytest.approx(np.mean(b), abs=1e-15)
                assert getattr(cell.topocl, f"{metric}_std") == pytest.approx(np.std(t, ddof=1), abs=1e-15)
                cmp_ = getattr(cell, metric)
                assert cmp_.delta == pytest.approx(np.mean(t) - np.mean(b), abs=1e-12)
                assert cmp_.p == pytest.approx(sps.ttest_rel(t, b).pvalue, rel=1e-9)
        # "Avg": per-seed averages over datasets, then the paired test across seeds.
        avg_b = np.mean([values(results, m, d, "baseline", "acc") for d in DATASETS], axis=0)
        avg_t = np.mean([values(results, m, d, "topocl", "acc") for d in DATASETS], axis=0)
        avg = table.cell(m, AVG)
        assert avg.baseline.acc == pytest.approx(tuple(avg_b), abs=1e-15)
        assert avg.acc.p == pytest.approx(sps.ttest_rel(avg_t, avg_b).pvalue, rel=1e-9)
        assert avg.acc.n_pairs == len(SEEDS)


def test_table_json_roundtrip_is_exact() -> None:
    results = synthetic_results()
    # Degenerate corners too: a method with one seed (no std, no p) and an unpaired seed.
    results += [
        RunResult(d, "MoCo", v, 0, 0.71 + 0.01 * i, 0.8) for i, d in enumerate(DATASETS) for v in ("baseline", "topocl")
    ]
    results.append(RunResult("BreastMNIST", "SimCLR", "topocl", 9, 0.9, 0.9))
    table = build_table(results)
    doc = to_json(table)
    text = json.dumps(doc, allow_nan=False)  # strict JSON: undefined values are null
    again = from_json(json.loads(text))
    assert again == table
    assert to_json(again) == doc
    moco = table.cell("MoCo", "DermaMNIST")
    assert moco.baseline.acc_std is None and moco.acc.p is None and "n=1" in moco.acc.reason
    assert any("only one variant" in w for w in table.cell("SimCLR", "BreastMNIST").warnings)
    assert any("left out of Avg" in w for w in table.cell("SimCLR", AVG).warnings)
    with pytest.raises(ValueError, match="not a"):
        from_json({"format": "something-else"})


def _with_majority(r: RunResult, rate: float) -> RunResult:
    extras = {**r.extras, "probe": {"references": {"test": {"majority_acc": rate}}}}
    return RunResult(r.dataset, r.method, r.variant, r.seed, r.acc, r.auc, extras)


def test_table_carries_each_datasets_majority_rate() -> None:
    rates = dict(zip(DATASETS, (0.731, 0.625, 0.668), strict=True))
    table = build_table([_with_majority(r, rates[r.dataset]) for r in synthetic_results()])
    assert {d: table.majority_acc[d] for d in DATASETS} == rates
    assert table.majority_acc[AVG] == pytest.approx(np.mean(list(rates.values())))
    floor = next(line for line in to_markdown(table).splitlines() if line.startswith("| Majority class"))
    cells = [c.strip() for c in floor.strip("|").split("|")]
    assert cells[2:] == ["73.1", "50.0", "62.5", "50.0", "66.8", "50.0", "67.5", "50.0"]
    assert from_json(json.loads(json.dumps(to_json(table)))) == table
    # Records without probe references (older files) give no floor row rather than an invented one.
    assert "Majority class" not in to_markdown(build_table(synthetic_results()))
    # Rows of one dataset that disagree on its test split are refused.
    mixed = [_with_majority(r, 0.7 if r.variant == "baseline" else 0.6) for r in synthetic_results()]
    with pytest.raises(ValueError, match="disagree on the test majority rate"):
        build_table(mixed)


def test_markdown_contains_datasets_and_p_values() -> None:
    table = build_table(synthetic_results())
    md = to_markdown(table)
    for d in (*DATASETS, AVG):
        assert f"{d} ACC" in md and f"{d} AUC" in md
    for row in table.rows:
        for cell in (*row.cells, row.avg):
            assert format_p(cell.acc.p) in md and format_p(cell.auc.p) in md
    base = table.cell("SimCLR", "BreastMNIST").baseline
    assert f"{100 * base.acc_mean:.1f} ± {100 * base.acc_std:.1f}" in md
    assert md.count("| SimCLR | Baseline |") == 1
    assert format_p(None) == "n/a" and format_p(0.0001234) == "1.2e-04" and format_p(0.04567) == "0.046"


def test_build_table_rejects_bad_input() -> None:
    results = synthetic_results(methods=("SimCLR",), seeds=(0, 1))
    with pytest.raises(ValueError, match="duplicate run"):
        build_table([*results, results[0]])
    with pytest.raises(ValueError, match="must list exactly"):
        build_table(results, datasets=DATASETS[:2])
    with pytest.raises(ValueError, match="variant must be one of"):
        RunResult("BreastMNIST", "SimCLR", "topo", 0, 0.5, 0.5)
    with pytest.raises(ValueError, match="finite fraction"):
        RunResult("BreastMNIST", "SimCLR", "topocl", 0, 85.0, 0.5)
    with pytest.raises(ValueError, match="empty"):
        build_table([])


def test_run_results_file_and_probe_record(tmp_path) -> None:
    rng = np.random.default_rng(0)

    def fs(n, split):
        y = rng.integers(0, 2, n)
        return FeatureSet(split, rng.normal(size=(n, 4)) + 3.0 * y[:, None], y)

    res = linear_probe(
        fs(80, "train"),
        fs(40, "val"),
        fs(40, "test"),
        cs=(0.1,),
    )
    rec = run_result_from_probe("BreastMNIST", "SimCLR", "topocl", 3, res, extras={"ckpt": "last.pt"})
    assert rec.acc == res.test["acc"] and rec.extras["probe"]["selection"]["C"] == 0.1
    path = save_run_results(tmp_path / "runs.json", [rec, *synthetic_results(seeds=(0,))])
    loaded = load_run_results(path)
    assert loaded[0] == rec and len(loaded) == 1 + 2 * len(DATASETS) * 2


# ------------------------------------------------------------------------------------------ gate / cost


def test_gate_plot_writes_png(tmp_path) -> None:
    import matplotlib.image as mpimg

    rng = np.random.default_rng(0)
    weights = rng.dirichlet([1.0, 2.0, 3.0], size=90)
    labels = rng.integers(0, 2, 90)
    summary = gate_weight_summary(weights, labels)
    np.testing.assert_allclose(summary["all"][0], weights.mean(0))
    np.testing.assert_allclose(summary["class_1"][0], weights[labels == 1].mean(0))

    out = plot_gate_weights(
        weights,
        ["global", "local", "topo"],
        labels,
        ["benign", "malignant"],
        out_png=tmp_path / "fig" / "gates.png",
        title="BreastMNIST",
    )
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = mpimg.imread(out)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    plain = plot_gate_weights(weights, ["a", "b", "c"], out_png=tmp_path / "plain.png")
    assert plain.stat().st_size > 1000
    with pytest.raises(ValueError, match="expert_names"):
        plot_gate_weights(weights, ["a", "b"], out_png=tmp_path / "bad.png")


def test_flop_counter_gives_analytic_linear_cost() -> None:
    lin = nn.Linear(32, 10)
    lin.bias.requires_grad_(False)
    grad_before = torch.ones_like(lin.weight)
    lin.weight.grad = grad_before
    cost = model_cost(lin, torch.randn(4, 32), backward=True)
    assert cost["params_total"] == 32 * 10 + 10 and cost["params_trainable"] == 32 * 10
    assert cost["flops_forward_per_sample"] == 2 * 32 * 10  # one multiply-add per weight
    assert cost["flops_forward_batch"] == 4 * 2 * 32 * 10
    # Backward of a first layer only needs the weight gradient: one more matmul of the same size.
    assert cost["flops_train_step_per_sample"] == 2 * (2 * 32 * 10)
    assert lin.weight.grad is grad_before  # user gradients restored


def test_cost_table_shows_throughput_only_when_given() -> None:
    row = {"name": "ResNet-18 + TopoCL", **model_cost(nn.Linear(1000, 1000), torch.randn(2, 1000))}
    md = cost_table_markdown([row])
    assert "ResNet-18 + TopoCL" in md and "1.00" in md and "Throughput" not in md
    md2 = cost_table_markdown([{**row, "throughput_img_s": 1234.5}, {**row, "name": "baseline"}])
    assert "Throughput (img/s)" in md2 and "1234.5" in md2 and "—" in md2
    with pytest.raises(ValueError, match="lacks"):
        cost_table_markdown([{"name": "x"}])
