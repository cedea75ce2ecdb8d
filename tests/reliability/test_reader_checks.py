"""The trainer's reader checks every chunk it reads against the store's checksum table, on its first read.

Tampering that leaves the store's structure and root digest intact (a chunk's bytes rewritten, a chunk file
deleted: Zarr reads it as fill values) passes ``StoreDataset``'s opening checks; the chunk check is what catches
it, in the main process, in DataLoader workers and through ``topo train`` (one line, exit 2). Opting out
(``verify_chunks=False``, ``--no-verify-chunks``) reads the data as it is.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import zarr
from fixtures.consoles import use_console_width
from typer.testing import CliRunner

import topo.cli.app as app_mod
from topo.cli.common import error_line
from topo.store_schema import open_store
from topo.store_schema.errors import ChunkChecksumError
from topo.trainer.data import StoreDataset, make_loader


def _copy(small_store: Path, tmp_path: Path) -> tuple[Path, int]:
    """A copy of the store and a chunk that holds train samples."""
    store = tmp_path / "demo.zarr"
    shutil.copytree(small_store, store)
    st = open_store(store)
    return store, int(st.indices("train")[0]) // st.geometry.chunk_size


def _flip_chunk(store: Path, name: str, chunk: int) -> None:
    """Rewrite one chunk with other values, leaving every table and attribute as it was."""
    arr = zarr.open_group(str(store), mode="r+")[name]
    cs = open_store(store).geometry.chunk_size
    block = arr[chunk * cs : (chunk + 1) * cs]
    arr[chunk * cs : (chunk + 1) * cs] = 255 - block


def _dataset(store: Path, **kw) -> StoreDataset:
    return StoreDataset(str(store), splits="train", batch_size=16, rank=0, world_size=1, collate=True, **kw)


def _read_all(ds: StoreDataset, workers: int = 0) -> int:
    return sum(len(b["index"]) for b in make_loader(ds, num_workers=workers))


def test_a_sound_store_reads_and_every_chunk_read_is_checked_once(small_store) -> None:
    ds = _dataset(small_store, keys=("index", "image", "pd_h0"))
    n = _read_all(ds)
    assert n == ds.num_batches() * 16
    chunks = {int(i) // ds.geometry.chunk_size for b in ds.batches() for i in b}
    assert ds._verified == {(a, c) for a in ("images", "pd_h0") for c in chunks}


def test_an_altered_chunk_is_refused_naming_the_array_and_chunk(small_store, tmp_path: Path) -> None:
    store, chunk = _copy(small_store, tmp_path)
    _flip_chunk(store, "images", chunk)
    open_store(store).validate()  # structure and root digest intact: only the chunk check can tell
    with pytest.raises(ChunkChecksumError, match=rf"array 'images' chunk {chunk} \(samples \d+–\d+\) does not match"):
        _read_all(_dataset(store))
    # Opting out reads the altered pixels as they are.
    ds = _dataset(store, verify_chunks=False, keys=("index", "image"), shuffle=False)
    assert _read_all(ds) == ds.num_batches() * 16


def test_a_deleted_chunk_file_is_refused(small_store, tmp_path: Path) -> None:
    store, chunk = _copy(small_store, tmp_path)
    files = sorted((store / "pd_h0" / "c").rglob("*"))
    target = next(f for f in files if f.is_file() and f.relative_to(store / "pd_h0" / "c").parts[0] == str(chunk))
    target.unlink()  # Zarr now reads the chunk as fill values, without an error of its own
    with pytest.raises(ChunkChecksumError, match=f"array 'pd_h0' chunk {chunk}"):
        _read_all(_dataset(store, keys=("index", "pd_h0")))


def test_a_worker_process_raises_it_too_and_the_cli_line_is_one_line(small_store, tmp_path: Path) -> None:
    store, chunk = _copy(small_store, tmp_path)
    _flip_chunk(store, "images", chunk)
    with pytest.raises(ChunkChecksumError) as info:
        _read_all(_dataset(store, keys=("index", "image")), workers=1)
    assert "Original Traceback" in str(info.value)  # torch's wrapping of a worker's error: the whole stack
    line = error_line(info.value)
    assert "\n" not in line and "Traceback" not in line
    assert line.startswith(f"{store}: array 'images' chunk {chunk}") and "does not match its checksum" in line


def test_error_line_keeps_plain_messages() -> None:
    assert error_line(ValueError("two\n  lines")) == "two lines"


@pytest.mark.slow
def test_train_refuses_a_tampered_store_in_one_line_and_can_opt_out(small_store, tmp_path: Path, monkeypatch) -> None:
    use_console_width(monkeypatch, 1000)
    store, _ = _copy(small_store, tmp_path)
    st = open_store(store)
    flipped = {int(i) // st.geometry.chunk_size for i in st.indices("train")}
    for chunk in flipped:  # every train chunk, so the first batch fails whatever the shuffled order (no steps run)
        _flip_chunk(store, "images", chunk)
    args = [
        "train",
        "--store",
        str(store),
        "--workspace",
        str(tmp_path / "ws"),
        "--stage",
        "visual",
        "--backbone",
        "resnet18",
        "--device",
        "cpu",
        "--batch-size",
        "16",
        "--epochs",
        "1",
        "--monitor-every",
        "0",
        "--no-progress",
    ]
    r = CliRunner().invoke(app_mod.app, args)
    assert r.exit_code == 2, r.output
    errors = [line for line in r.output.splitlines() if line.startswith("error:")]
    named = re.search(r"array 'images' chunk (\d+)", errors[0]) if len(errors) == 1 else None
    assert named and int(named.group(1)) in flipped, r.output
    assert r.output.strip().splitlines()[-1] == errors[0], r.output  # the error's one line is the last thing said
    assert "Traceback" not in r.output
    r = CliRunner().invoke(app_mod.app, [*args, "--no-verify-chunks", "--max-steps", "1", "--overwrite"])
    assert r.exit_code == 0, r.output


def test_the_check_costs_one_hash_per_chunk_not_per_sample(small_store) -> None:
    """Reading twice in one process hashes nothing new the second time (what the first read checked stays so)."""
    ds = _dataset(small_store, keys=("index", "image"))
    _read_all(ds)
    before = set(ds._verified)
    ds.set_epoch(1)
    _read_all(ds)
    assert ds._verified == before and before
    assert np.all([isinstance(c, int) for _, c in before])
