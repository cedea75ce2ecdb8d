"""pack → read in place / unpack → verify, and unpack's refusal of unsafe archives (zip-slip, links)."""

from __future__ import annotations

import hashlib
import shutil
import stat
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from topo.store_schema import ARRAYS, StoreError, StoreIncompleteError, open_store
from topo.store_schema.pack import pack_store, unpack_store
from topo.store_schema.store import write_table_atomic
from topo.store_schema.verify import verify_store


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _listing(d: Path) -> set[str]:
    return {p.relative_to(d).as_posix() for p in d.rglob("*")}


@pytest.fixture(scope="module")
def store_copy(small_store: Path, tmp_path_factory) -> Path:
    """small_store plus a calibration table and a stray temporary file, as a finished store can hold."""
    root = tmp_path_factory.mktemp("packsrc") / "demo.zarr"
    shutil.copytree(small_store, root)
    write_table_atomic(root / "calibration" / "table.parquet", pa.table({"op": ["blur"], "delta": [0.1]}))
    (root / "images" / ".0.1234.tmp").write_bytes(b"half-written")
    return root


@pytest.fixture(scope="module")
def packed(store_copy: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("packed") / "demo.zip"
    r = pack_store(store_copy, out)
    assert r.path == out and r.members > 0 and r.skipped == ("images/.0.1234.tmp",)
    return out


def test_zip_layout_is_the_store_root_stored_uncompressed(packed: Path, store_copy: Path) -> None:
    with zipfile.ZipFile(packed) as zf:
        names = set(zf.namelist())
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_STORED}
    expected = set(_files(store_copy)) - {"images/.0.1234.tmp"}
    assert names == expected
    assert {"zarr.json", "manifest.parquet", "checksums.parquet", "calibration/table.parquet"} <= names
    assert {f"{a}/zarr.json" for a in ARRAYS} <= names


def test_packed_store_reads_in_place_and_verifies(packed: Path, small_store: Path) -> None:
    z, d = open_store(packed), open_store(small_store)
    assert z.location.kind == "zip"
    assert z.attrs == d.attrs and z.fingerprint == d.fingerprint
    for name in ARRAYS:
        np.testing.assert_array_equal(z.array(name)[:], d.array(name)[:])
    assert z.manifest().equals(d.manifest())
    report = verify_store(packed)
    assert report.ok, report.problems
    assert report.chunks_checked == len(ARRAYS) * d.geometry.num_chunks


def test_pack_is_reproducible(store_copy: Path, packed: Path, tmp_path: Path) -> None:
    again = pack_store(store_copy, tmp_path / "again.zip").path
    assert hashlib.sha256(again.read_bytes()).digest() == hashlib.sha256(packed.read_bytes()).digest()


def test_unpack_round_trip_is_identical(packed: Path, store_copy: Path, tmp_path: Path) -> None:
    out = unpack_store(packed, tmp_path / "copy.zarr")
    report = verify_store(out)
    assert report.ok, report.problems
    assert open_store(out).fingerprint == open_store(store_copy).fingerprint
    src = _files(store_copy)
    del src["images/.0.1234.tmp"]
    assert _files(out) == src
    assert _listing(tmp_path) == {"copy.zarr", *(f"copy.zarr/{p}" for p in _listing(out))}


def test_unpack_into_existing_empty_dir_and_refuses_non_empty(packed: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert unpack_store(packed, empty, verify=False) == empty
    assert (empty / "zarr.json").is_file()
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "note.txt").write_text("keep me")
    with pytest.raises(StoreError, match="not an empty directory"):
        unpack_store(packed, busy)
    assert _listing(busy) == {"note.txt"}


def test_unpack_accepts_a_zip_of_the_store_folder(store_copy: Path, tmp_path: Path) -> None:
    # What `zip -r demo.zip demo.zarr` makes: the store under one top folder.
    z = tmp_path / "folder.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for rel, data in _files(store_copy).items():
            zf.writestr(f"demo.zarr/{rel}", data)
    out = unpack_store(z, tmp_path / "out.zarr")
    assert verify_store(out).ok


def test_pack_refuses_bad_targets(store_copy: Path, packed: Path, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="exists"):
        pack_store(store_copy, packed)
    with pytest.raises(StoreError, match=r"must end in \.zip"):
        pack_store(store_copy, tmp_path / "demo.tar")
    with pytest.raises(StoreError, match="inside the store"):
        pack_store(store_copy, store_copy / "self.zip")
    with pytest.raises(StoreError, match="no store"):
        pack_store(tmp_path, tmp_path.parent / "x.zip")


def test_pack_refuses_symlinks_in_the_store(small_store: Path, tmp_path: Path) -> None:
    root = tmp_path / "linked.zarr"
    shutil.copytree(small_store, root)
    secret = tmp_path / "secret.txt"
    secret.write_text("not for sharing")
    (root / "calibration").mkdir()
    (root / "calibration" / "notes.txt").symlink_to(secret)
    with pytest.raises(StoreError, match=r"notes\.txt is a symbolic link"):
        pack_store(root, tmp_path / "linked.zip")
    assert not (tmp_path / "linked.zip").exists()


def test_pack_refuses_an_incomplete_store(ray_session, tmp_path: Path) -> None:
    from topo.pipeline.job import BuildConfig, build_store

    out = tmp_path / "partial.zarr"
    s = build_store(BuildConfig(dataset="demo", out=out, limit=64, chunk_size=32, max_chunks=1, progress=False))
    assert not s.complete
    with pytest.raises(StoreIncompleteError, match="build incomplete"):
        pack_store(out, tmp_path / "partial.zip")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["partial.zarr"]


# ------------------------------------------------------------------------------------- hostile archives
def _evil_zip(path: Path, store: Path, member: zipfile.ZipInfo, data: bytes) -> Path:
    """A real packed store with one hostile member appended (so only that member can be the reason)."""
    with zipfile.ZipFile(path, "w") as zf:
        for rel, content in _files(store).items():
            zf.writestr(rel, content)
        zf.writestr(member, data)
    return path


def _link(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16  # what `zip --symlinks` records for a link
    return info


@pytest.mark.parametrize(
    ("member", "data", "why"),
    [
        (zipfile.ZipInfo("/tmp/topo_evil_abs.txt"), b"x", "absolute path"),
        (zipfile.ZipInfo("../topo_evil_up.txt"), b"x", "'..' component"),
        (zipfile.ZipInfo("images/../../topo_evil_nested.txt"), b"x", "'..' component"),
        (zipfile.ZipInfo("C:/topo_evil_drive.txt"), b"x", "absolute path"),
        (zipfile.ZipInfo("..\\topo_evil_backslash.txt"), b"x", "backslash"),
        (_link("calibration/escape"), b"../../../../etc/passwd", "symbolic link"),
        (_link("zarr.json.link"), b"/etc/passwd", "symbolic link"),
    ],
    ids=["absolute", "dotdot", "nested-dotdot", "drive", "backslash", "symlink-relative", "symlink-absolute"],
)
def test_unpack_refuses_unsafe_members(
    store_copy: Path, tmp_path: Path, member: zipfile.ZipInfo, data: bytes, why: str
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    z = _evil_zip(tmp_path / "evil.zip", store_copy, member, data)
    before_tmp = {p.name for p in Path("/tmp").glob("topo_evil_*")}
    target = work / "out" / "store.zarr"
    with pytest.raises(StoreError) as e:
        unpack_store(z, target)
    msg = str(e.value)
    assert repr(member.filename) in msg and why in msg
    # Nothing written anywhere: not the target, no staging folder beside it, nothing next to the work dir.
    assert not target.exists()
    assert _listing(work) == {"out"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.zip", "work"]
    assert {p.name for p in Path("/tmp").glob("topo_evil_*")} == before_tmp


def test_unpack_names_every_unsafe_member_and_refuses_duplicates(store_copy: Path, tmp_path: Path) -> None:
    z = tmp_path / "two.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for rel, content in _files(store_copy).items():
            zf.writestr(rel, content)
        zf.writestr("../a.txt", b"a")
        zf.writestr(_link("b"), b"/")
        with pytest.warns(UserWarning, match="Duplicate name"):
            zf.writestr("zarr.json", b"{}")
    with pytest.raises(StoreError) as e:
        unpack_store(z, tmp_path / "out")
    msg = str(e.value)
    assert "'../a.txt'" in msg and "'b' (symbolic link" in msg and "'zarr.json' (duplicate member name)" in msg
    assert not (tmp_path / "out").exists()


def test_unpack_refuses_damaged_or_foreign_archives(packed: Path, tmp_path: Path) -> None:
    # A flipped byte inside a stored chunk: zip's CRC catches it; nothing is left behind.
    data = bytearray(packed.read_bytes())
    with zipfile.ZipFile(packed) as zf:
        info = zf.getinfo("images/c/0/0/0/0")
    off = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + 100
    data[off] ^= 0xFF
    bad = tmp_path / "bad.zip"
    bad.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="damaged"):
        unpack_store(bad, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.zip"]
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("README.txt", "hello")
    with pytest.raises(StoreError, match="not a packed topo store"):
        unpack_store(other, tmp_path / "out")
    (tmp_path / "plain.zip").write_bytes(b"not a zip at all")
    with pytest.raises(StoreError, match="not a zip file"):
        unpack_store(tmp_path / "plain.zip", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_full_diagrams_travel_with_the_store(ray_session, tmp_path: Path) -> None:
    from topo.pipeline.job import BuildConfig, build_store
    from topo.pipeline.persistence import FiltrationSpec

    src = tmp_path / "full.zarr"
    build_store(
        BuildConfig(
            dataset="demo",
            out=src,
            limit=40,
            chunk_size=16,
            progress=False,
            filtration=FiltrationSpec(full_diagrams=True),
        )
    )
    z = pack_store(src, tmp_path / "full.zip").path
    with zipfile.ZipFile(z) as zf:
        assert {f"full_diagrams/{c:07d}.parquet" for c in range(3)} <= set(zf.namelist())
    d, p = open_store(src), open_store(z)
    for i in (0, 17, 39):
        for a, b in zip(p.full_diagrams(i), d.full_diagrams(i), strict=True):
            np.testing.assert_array_equal(a, b)
    out = unpack_store(z, tmp_path / "copy.zarr")
    assert _files(out) == _files(src)
