"""``build-store --strict`` names the first failed sample in index order, not the first one Ray happened to finish.

The folder is laid out so that timing favours the wrong answer: chunk 0 holds large images (slow to decode) and a
truncated file at its last index; chunk 1 holds small images and a truncated file near its start, so chunk 1
finishes first. The error must still name chunk 0's sample, on the first run and on every re-run (which resumes
past the chunks the first run finished).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from topo.pipeline.first_failure import Failure, FirstFailure
from topo.store_schema import open_store

CHUNK = 8


def _png(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


@pytest.fixture(scope="module")
def two_bad(tmp_path_factory) -> tuple[Path, str, str]:
    """32 samples in 4 chunks of 8: class ``a`` (chunk 0, large noise PNGs), classes ``b``–``d`` (small PNGs)."""
    root = tmp_path_factory.mktemp("strict") / "order"
    rng = np.random.default_rng(0)
    for cls, side in (("a", 1400), ("b", 40), ("c", 40), ("d", 40)):
        (root / cls).mkdir(parents=True)
        for i in range(CHUNK):
            data = _png(rng.integers(0, 256, (side, side, 3), dtype=np.uint8))
            (root / cls / f"{cls}{i:02d}.png").write_bytes(data)
    first, later = root / "a" / "a07.png", root / "b" / "b01.png"  # indices 7 (chunk 0) and 9 (chunk 1)
    for p in (first, later):
        p.write_bytes(p.read_bytes()[:200])  # truncated: a decode failure of that sample alone
    return root, f"{root.name}/a/a07.png", f"{root.name}/b/b01.png"


def _args(root: Path, out: Path) -> list[str]:
    return [
        "build-store",
        "--dataset",
        "folder",
        "--data-dir",
        str(root),
        "--out",
        str(out),
        "--image-size",
        "32",
        "--chunk-size",
        str(CHUNK),
        "--no-progress",
        "--strict",
    ]


def test_strict_names_the_lowest_index_failure_every_time(ray_session, two_bad, tmp_path: Path) -> None:
    from topo.cli.app import app

    root, first_id, later_id = two_bad
    out = tmp_path / "s.zarr"
    runner = CliRunner(env={"COLUMNS": "400", "NO_COLOR": "1"})
    for attempt in range(2):  # the second run resumes: finished chunks (chunk 1's failure among them) are skipped
        r = runner.invoke(app, _args(root, out))
        assert r.exit_code == 1, r.output
        line = " ".join(r.output.split())  # one message, however the console wrapped it
        assert f"--strict: sample {first_id} failed: corrupt or truncated image" in line, (attempt, r.output)
        assert "index 7," in line and later_id not in line, (attempt, r.output)
        assert "Traceback" not in r.output
    assert not open_store(out).is_complete
    # Without --strict the same store resumes and records both failures, in index order.
    r = runner.invoke(app, [a for a in _args(root, out) if a != "--strict"])
    assert r.exit_code == 0, r.output
    rows = open_store(out).manifest().to_pylist()
    assert [row["sample_id"] for row in rows if row["status"] == "failed"] == [first_id, later_id]


def test_strict_rerun_after_a_finished_failed_chunk_still_stops(ray_session, two_bad, tmp_path: Path) -> None:
    """A resumed --strict build must not skip over a failure recorded in a chunk an earlier run finished."""
    from topo.cli.app import app

    root, first_id, _ = two_bad
    out = tmp_path / "resume.zarr"
    runner = CliRunner(env={"COLUMNS": "400", "NO_COLOR": "1"})
    plain = [a for a in _args(root, out) if a != "--strict"]
    r = runner.invoke(app, [*plain, "--max-chunks", "1"])  # chunk 0 finished, with its failure recorded
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, _args(root, out))
    assert r.exit_code == 1, r.output
    assert f"--strict: sample {first_id} failed" in " ".join(r.output.split()), r.output
    assert not open_store(out).is_complete


def test_first_failure_keeps_the_lowest_index_whatever_the_order_offered() -> None:
    late, early = Failure(9, 1, "b01", "x"), Failure(7, 0, "a07", "y")
    for order in ((late, early), (early, late)):
        f = FirstFailure()
        for failure in order:
            f.offer(failure)
        assert f.best == early
        assert f.matters(-1) and not f.matters(0) and not f.matters(1)
    assert FirstFailure().matters(10**6)  # nothing known yet: every chunk may hold the first failure
