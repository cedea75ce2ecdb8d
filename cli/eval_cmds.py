"""`topo eval`, `topo report`, `topo export` and `topo fetch-sam`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from topo.cli.common import DatasetOpt, StoreOpt, Workspace, error_line, fail, out, run_key, store_arg
from topo.cli.workspace import (
    workspace_root,
)


def eval_cmd(
    method: Annotated[str, typer.Option(help="The method whose runs to evaluate.")] = "byol",
    store: StoreOpt = None,
    dataset: DatasetOpt = None,
    seeds: Annotated[str, typer.Option(help="Pretraining seeds, comma-separated.")] = "0,1,2,3,4",
    variants: Annotated[
        str, typer.Option(help="baseline (compute-matched visual encoder; stage-1 encoder as an extra row), topocl.")
    ] = "baseline,topocl",
    probe_max_iter: Annotated[int, typer.Option(help="Linear-probe L-BFGS iteration cap.")] = 2000,
    suffix: Annotated[
        str | None, typer.Option(help="Run-name suffix to evaluate (default: the only one there is).")
    ] = None,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    workspace: Workspace = None,
) -> None:
    """Linear probe on frozen features (selection on val, test once), ACC/AUC, paired t-tests, Table 3."""
    from topo.store_schema import StoreError
    from topo.trainer.eval.run import evaluate

    ws = workspace_root(workspace)
    target = store_arg(store, dataset, workspace)
    key = run_key(target)
    try:
        res = evaluate(
            store=target,
            dataset=key,
            method=method,
            runs=ws / "runs" / key,
            seeds=[int(s) for s in seeds.split(",") if s.strip()],
            variants=[v.strip() for v in variants.split(",") if v.strip()],
            probe_max_iter=probe_max_iter,
            suffix=suffix,
            report_dir=ws / "reports" / key,
            device=device,
        )
    except (FileNotFoundError, StoreError, ValueError) as e:
        fail(error_line(e))
        return
    out.print(res.markdown.read_text())
    out.print(f"written: {res.markdown}, {res.json}" + "".join(f", {f}" for f in res.figures))


def report_cmd(
    results: Annotated[list[Path], typer.Argument(help="results_*.json files written by `topo eval`.")],
    out_prefix: Annotated[Path, typer.Option("--out", help="Prefix of the .md and .json written.")] = Path("table3"),
) -> None:
    """Merge `topo eval` results of several datasets/methods into one Table 3 (Markdown + JSON)."""
    from topo.trainer.eval.report import build_table, load_run_results, to_json, to_markdown

    try:
        records = [r for p in results for r in load_run_results(p)]
        table = build_table(records)
    except (OSError, ValueError, KeyError, TypeError) as e:  # a missing file, not JSON, or not `topo eval` output
        fail(f"cannot read the results ({type(e).__name__}: {e}); give results_*.json files written by `topo eval`")
    md = to_markdown(table)
    out_prefix.with_suffix(".md").write_text(md + "\n")
    out_prefix.with_suffix(".json").write_text(json.dumps(to_json(table), indent=1, allow_nan=False))
    out.print(md)


def export_cmd(
    run: Annotated[Path, typer.Argument(help="A run directory (or its checkpoint file).")],
    out_dir: Annotated[Path, typer.Argument(help="Folder to write model.pt, metadata.json and README.md into.")],
) -> None:
    """Export a trained encoder (visual-only or fused) for use outside topo: `topo.load_encoder(OUT)`."""
    import pickle

    from topo.store_schema import StoreError, open_store
    from topo.trainer.checkpoint import CheckpointError, load_checkpoint
    from topo.trainer.export import export_encoder

    ck_path = run if run.is_file() else run / "checkpoints" / "final.pt"
    try:
        ck = load_checkpoint(ck_path)
        try:
            attrs = open_store(ck["config"]["store"]).attrs
        except StoreError:
            attrs = None  # the store moved: export without its licence text
        path = export_encoder(ck_path, out_dir, store_attrs=attrs)
    except (CheckpointError, FileNotFoundError) as e:
        fail(str(e))
        return
    except (pickle.UnpicklingError, EOFError, RuntimeError, KeyError) as e:  # a file that is not a topo checkpoint
        fail(f"{ck_path} is not a topo checkpoint ({type(e).__name__}: {e})")
        return
    out.print(f"exported {ck_path} → {path}")


def fetch_sam_cmd(
    model: Annotated[str, typer.Option(help="vit_h, vit_l or vit_b.")] = "vit_h",
    directory: Annotated[Path, typer.Option("--dir", help="Where to save the checkpoint.")] = Path("checkpoints"),
) -> None:
    """Download an official SAM checkpoint (the only command that fetches weights) and check its md5."""
    import urllib.request

    from topo.pipeline.roi.sam import OFFICIAL_CHECKPOINTS, OFFICIAL_URL, SAM_CHECKPOINT_ENV, resolve_checkpoint

    names = {m: n for n, (m, _) in OFFICIAL_CHECKPOINTS.items()}
    if model not in names:
        fail(f"unknown SAM model {model!r}; valid: {', '.join(names)}")
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / names[model]
    if not target.exists():
        out.print(f"downloading {OFFICIAL_URL.format(name=target.name)} → {target}")
        tmp = target.with_suffix(".part")
        urllib.request.urlretrieve(OFFICIAL_URL.format(name=target.name), tmp)
        tmp.replace(target)
    info = resolve_checkpoint(model, target)
    out.print(f"{target}: md5 {info['md5']} (official). Use --sam-checkpoint {target} or set {SAM_CHECKPOINT_ENV}.")
