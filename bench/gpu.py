"""One prepared GPU measurement: SAM encoder and ROI throughput, box-mode store builds, SSL training steps.

    bench/gpu.sh                 # on a machine with one GPU: at most ~8 minutes, no downloads
    bench/gpu.sh --dry-run       # every part on the CPU with tiny sizes (the test runs this)

SAM runs with random weights (the compute of the real checkpoint) unless ``$TOPO_SAM_CHECKPOINT`` names a file.
Each part runs in its own process under its own time cap; a part that reaches its cap is stopped, keeps the rows it
had measured, and is marked in the table. Writes ``bench/results/gpu-<device>.json`` and ``.md`` and prints the
table. Parts are in ``bench/gpu_parts.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

# (part, cap in seconds on a GPU, cap in a dry run: generous, shared CPUs are slow).
# The GPU caps add up to 465 s: with start-up, under 8 minutes.
PARTS: tuple[tuple[str, int, int], ...] = (
    ("sam_weights", 40, 120),
    ("sam_encoder", 70, 120),
    ("sam_compile", 75, 120),
    ("sam_roi", 60, 120),
    ("sam_box_store", 70, 180),
    ("train", 150, 240),
)
TOTAL_BUDGET_S = 465  # the whole script on a GPU; a part gets what is left if that is less than its cap


def device_slug() -> str:
    import torch

    if not torch.cuda.is_available():
        return "cpu"
    return re.sub(r"[^a-z0-9]+", "-", torch.cuda.get_device_name(0).lower()).strip("-")


def run_part(name: str, cap: float, work: Path, dry: bool) -> dict[str, Any]:
    """The part in a child process (its own session, so a stop at the cap takes its children too)."""
    cmd = [sys.executable, str(HERE / "gpu.py"), "--part", name, "--work", str(work)] + (["--dry-run"] if dry else [])
    t0 = time.perf_counter()
    log = (work / f"{name}.log").open("w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        rc = proc.wait(timeout=cap)
        status = "ok" if rc == 0 else f"failed (exit {rc})"
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        status = f"stopped at its {cap:.0f} s cap"
    log.close()
    rows_file = work / f"{name}.jsonl"
    lines = rows_file.read_text().splitlines() if rows_file.exists() else []
    items = [json.loads(line) for line in lines]
    rows = [i for i in items if "note" not in i]
    notes = [i["note"] for i in items if "note" in i]
    if status.startswith("failed"):
        notes.append("last output: " + " | ".join((work / f"{name}.log").read_text().strip().splitlines()[-3:]))
    return {"status": status, "seconds": round(time.perf_counter() - t0, 1), "cap_s": cap, "rows": rows, "notes": notes}


def markdown(result: dict[str, Any]) -> str:
    label = " (CPU dry run: tiny sizes, not GPU figures)" if result["dry_run"] else ""
    head = (
        f"## GPU benchmark: {result['device']}{label}\n\n{result['machine']}; torch {result['torch']}; "
        f"wall {result['wall_s']:.0f} s; command `{result['command']}`; started {result['started_utc']}\n"
    )
    out = [head]
    for name, part in result["parts"].items():
        out.append(f"\n### {name}: {part['status']} ({part['seconds']:.0f} s of {part['cap_s']:.0f} s cap)\n")
        if part["rows"]:
            cols = list(dict.fromkeys(k for r in part["rows"] for k in r))
            out.append("| " + " | ".join(cols) + " |")
            out.append("|" + "---|" * len(cols))
            for r in part["rows"]:
                out.append("| " + " | ".join(_cell(r.get(c, "")) for c in cols) + " |")
        for note in part["notes"]:
            out.append(f"\n* {note}")
    return "\n".join(out) + "\n"


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.3g}" if abs(v) < 100 else f"{v:,.0f}"
    return str(v)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dry-run", action="store_true", help="every part on the CPU with tiny sizes")
    ap.add_argument("--out-dir", type=Path, default=HERE / "results")
    ap.add_argument("--parts", default=",".join(p for p, _, _ in PARTS), help="comma-separated subset")
    ap.add_argument("--part", help=argparse.SUPPRESS)  # internal: run one part in this process
    ap.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.part:
        sys.path.insert(0, str(HERE))
        import gpu_parts

        gpu_parts.run(args.part, args.work, args.dry_run)
        return
    import torch

    if not args.dry_run and not torch.cuda.is_available():
        ap.error("no CUDA device: run with --dry-run on a CPU")
    known = {p for p, _, _ in PARTS}
    wanted = [p.strip() for p in args.parts.split(",") if p.strip()]
    if unknown := sorted(set(wanted) - known):
        ap.error(f"unknown parts {unknown}; valid: {', '.join(sorted(known))}")
    t_start = time.perf_counter()
    result: dict[str, Any] = {
        "device": f"{device_slug()}{'-dry-run' if args.dry_run else ''}",
        "dry_run": args.dry_run,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores"
        + (f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no GPU"),
        "torch": torch.__version__,
        "command": "bench/gpu.sh" + (" --dry-run" if args.dry_run else ""),
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "parts": {},
    }
    with tempfile.TemporaryDirectory(prefix="topo-gpu-bench-") as tmp:
        work = Path(tmp)
        for name, cap_gpu, cap_dry in PARTS:
            if name not in wanted:
                continue
            left = TOTAL_BUDGET_S - (time.perf_counter() - t_start)
            cap = cap_dry if args.dry_run else min(cap_gpu, left)
            if cap < 10:
                result["parts"][name] = {"status": "skipped: total budget spent", "seconds": 0, "cap_s": cap_gpu}
                result["parts"][name] |= {"rows": [], "notes": []}
                continue
            print(f"[gpu bench] {name} (cap {cap:.0f} s) ...", file=sys.stderr, flush=True)
            result["parts"][name] = run_part(name, cap, work, args.dry_run)
    result["wall_s"] = round(time.perf_counter() - t_start, 1)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    stem = args.out_dir / f"gpu-{result['device']}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    md = markdown(result)
    stem.with_suffix(".md").write_text(md)
    print(md)
    print(f"written: {stem}.json, {stem}.md", file=sys.stderr)


if __name__ == "__main__":
    main()
