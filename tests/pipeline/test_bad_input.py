"""Inputs that real datasets contain: each becomes one manifest row with a precise reason, the rest builds.

Folder source: good PNGs plus a truncated PNG, garbage with a .png suffix, a zero-byte file, a CMYK JPEG,
a 16-bit PNG, a palette PNG, a PNG whose header claims 9000x8000 pixels (over ``decode.MAX_PIXELS``), a
constant image, and two files with one stem (``dup.jpg`` / ``dup.png``: ids keep the extension, so two samples).
NPZ source: float images with NaN / +inf / -inf, labels outside the class list.

Which are usable is asserted, not assumed: CMYK, 16-bit and palette images are legitimate and stored as
``ok`` (with the pixels they hold); a constant image decodes but its Otsu ROI is degenerate, so it is a
``fallback`` (whole image as ROI) with the reason.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from topo.pipeline.decode import MAX_PIXELS
from topo.pipeline.sources import demo_path
from topo.store_schema import open_store
from topo.store_schema.verify import verify_store

SIZE = 28  # the images' own size: nothing is resized, so stored pixels can be compared exactly


def _real_images(n: int) -> np.ndarray:
    with np.load(demo_path(), allow_pickle=False) as z:
        return z["train_images"][:n]


def _png(a: np.ndarray, **kw: object) -> bytes:
    b = io.BytesIO()
    Image.fromarray(a).save(b, format="PNG", **kw)
    return b.getvalue()


def _png_claiming(width: int, height: int) -> bytes:
    """A well-formed PNG header claiming ``width x height`` grey pixels, followed by one scanline only."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * (width + 1)))
        + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> tuple[Path, dict[str, np.ndarray]]:
    """The folder dataset, and the pixels each usable special file should give (grey, HxW)."""
    root = tmp_path_factory.mktemp("bad") / "data"
    imgs = _real_images(30)
    for c in ("c0", "c1"):
        (root / c).mkdir(parents=True)
    for i in range(24):
        (root / f"c{i % 2}" / f"good{i:02d}.png").write_bytes(_png(imgs[i]))
    good = _png(imgs[24])
    (root / "c0" / "truncated.png").write_bytes(good[: len(good) // 2])
    (root / "c0" / "garbage.png").write_bytes(b"this is a text file, not an image\n" * 20)
    (root / "c0" / "empty.png").write_bytes(b"")
    (root / "c1" / "huge.png").write_bytes(_png_claiming(9000, 8000))
    assert MAX_PIXELS < 9000 * 8000
    expected: dict[str, np.ndarray] = {}
    b = io.BytesIO()
    Image.fromarray(imgs[25]).convert("CMYK").save(b, format="JPEG", quality=95)
    (root / "c1" / "cmyk.jpg").write_bytes(b.getvalue())
    expected["cmyk"] = imgs[25]
    (root / "c1" / "sixteen.png").write_bytes(_png(imgs[26].astype(np.uint16) * 257))  # full 16-bit range
    expected["sixteen"] = imgs[26]
    rgb = np.repeat(imgs[27][..., None], 3, axis=2)
    pal = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=256)
    pb = io.BytesIO()
    pal.save(pb, format="PNG")
    assert Image.open(io.BytesIO(pb.getvalue())).mode == "P"
    (root / "c1" / "palette.png").write_bytes(pb.getvalue())
    expected["palette"] = np.asarray(pal.convert("L"))
    (root / "c0" / "constant.png").write_bytes(_png(np.full((SIZE, SIZE), 128, np.uint8)))
    (root / "c0" / "dup.jpg").write_bytes(_png(imgs[28]))  # PNG bytes under a .jpg name: Pillow sniffs content
    (root / "c0" / "dup.png").write_bytes(_png(imgs[29]))
    return root, expected


@pytest.fixture(scope="module")
def folder_store(ray_session, folder, tmp_path_factory) -> Path:
    from topo.pipeline.job import BuildConfig, build_store

    root, _ = folder
    out = tmp_path_factory.mktemp("badstore") / "s.zarr"
    s = build_store(
        BuildConfig(dataset="folder", data_dir=str(root), out=out, image_size=SIZE, chunk_size=8, progress=False)
    )
    assert s.complete
    return out


def _rows(store: Path) -> dict[str, dict]:
    """Manifest rows by file stem (by file name for the two ``dup`` files, which share a stem)."""
    out = {}
    for r in open_store(store).manifest().to_pylist():
        name = r["sample_id"].rsplit("/", 1)[1]
        out[name if name.startswith("dup") else name.rsplit(".", 1)[0]] = r
    return out


def test_each_bad_file_is_one_failed_row_with_its_reason(folder_store: Path) -> None:
    rows = _rows(folder_store)
    assert len(rows) == 24 + 10  # 34 records, 34 ids
    failed = {k: r["reason"] for k, r in rows.items() if r["status"] == "failed"}
    assert set(failed) == {"truncated", "garbage", "empty", "huge"}
    assert failed["truncated"].startswith("corrupt or truncated image")
    assert failed["garbage"] == "not a decodable image (unknown or corrupt format)"
    assert failed["empty"] == "empty file (0 bytes)"
    assert failed["huge"] == f"image too large: 9000x8000 pixels > {MAX_PIXELS} allowed"
    for k in failed:
        assert rows[k]["input_sha256"] is None and rows[k]["n_h0"] is None


def test_files_with_one_stem_are_two_samples(folder_store: Path) -> None:
    m = open_store(folder_store).manifest().to_pylist()
    dups = [r for r in m if "/dup." in r["sample_id"]]
    assert [r["source_ref"] for r in dups] == ["c0/dup.jpg", "c0/dup.png"]
    assert [r["sample_id"].rsplit("/", 1)[1] for r in dups] == ["dup.jpg", "dup.png"]
    assert [r["status"] for r in dups] == ["ok", "ok"]


def test_legitimate_odd_inputs_are_usable_with_their_pixels(folder_store: Path, folder) -> None:
    _, expected = folder
    st = open_store(folder_store)
    rows = _rows(folder_store)
    images = st.array("images")
    for k in ("cmyk", "sixteen", "palette"):
        assert rows[k]["status"] == "ok", (k, rows[k]["reason"])
        stored = images[rows[k]["index"]]
        assert stored.shape == (SIZE, SIZE, 3)
        grey = stored[..., 0].astype(int)
        if k == "cmyk":  # JPEG is lossy; the CMYK round trip keeps the picture
            assert np.abs(grey - expected[k].astype(int)).mean() < 3
        else:
            np.testing.assert_array_equal(grey, expected[k])
    const = rows["constant"]
    assert const["status"] == "fallback" and const["reason"]
    i = const["index"]
    assert st.array("roi_masks")[i].all()  # whole image used
    assert st.array("n_h0")[i] == 1 and st.array("n_h1")[i] == 0
    np.testing.assert_allclose(st.array("pd_h0")[i, 0], [128 / 255, 128 / 255], rtol=1e-6)


def test_everything_else_builds_and_verifies(folder_store: Path) -> None:
    rows = _rows(folder_store)
    goods = [r for k, r in rows.items() if k.startswith("good")]
    assert len(goods) == 24 and all(r["status"] in ("ok", "fallback") for r in goods)
    assert sum(r["status"] == "ok" for r in goods) >= 20
    report = verify_store(folder_store)
    assert report.ok, report.problems
    counts = open_store(folder_store).attrs["build"]["counts"]
    assert counts == {"ok": 29, "fallback": 1, "failed": 4}  # 34 records: 24 good + 10 special


def test_npz_non_finite_pixels_and_labels_out_of_range(ray_session, tmp_path: Path) -> None:
    from topo.pipeline.job import BuildConfig, build_store

    imgs = _real_images(24).astype(np.float32) / 255.0  # floats in [0, 1], scaled by 255 on decode
    imgs[3, 5, 5] = np.nan
    imgs[5, 0, 0] = np.inf
    imgs[7, 10, 10] = -np.inf
    labels = (np.arange(24) % 2).reshape(-1, 1)
    labels[9], labels[11] = 7, -1
    npz = tmp_path / "floaty.npz"
    np.savez(npz, train_images=imgs, train_labels=labels, class_names=np.array(["benign", "malignant"]))
    out = tmp_path / "npz.zarr"
    s = build_store(BuildConfig(dataset="npz", data_dir=str(npz), out=out, chunk_size=8, progress=False))
    assert s.complete
    st = open_store(out)
    m = st.manifest().to_pylist()
    reasons = {r["index"]: r["reason"] for r in m if r["status"] == "failed"}
    assert reasons == {
        3: "non-finite values (NaN or inf) in a float32 image",
        5: "non-finite values (NaN or inf) in a float32 image",
        7: "non-finite values (NaN or inf) in a float32 image",
        9: "label 7 out of range [0, 2)",
        11: "label -1 out of range [0, 2)",
    }
    ok = [r["index"] for r in m if r["status"] != "failed"]
    assert len(ok) == 19
    np.testing.assert_array_equal(st.array("images")[0][..., 0], _real_images(1)[0])
    assert verify_store(out).ok


def test_strict_stops_naming_the_sample(ray_session, folder, tmp_path: Path) -> None:
    from topo.cli.app import app

    root, _ = folder
    out = tmp_path / "strict.zarr"
    args = [
        "build-store",
        "--dataset",
        "folder",
        "--data-dir",
        str(root),
        "--out",
        str(out),
        "--image-size",
        str(SIZE),
        "--chunk-size",
        "8",
        "--no-progress",
    ]
    runner = CliRunner(env={"COLUMNS": "300", "NO_COLOR": "1"})
    r = runner.invoke(app, [*args, "--strict"])
    assert r.exit_code == 1, r.output
    expected = {  # sample ids are "<folder name>/<class>/<file name>"
        f"{root.name}/c0/truncated.png": "corrupt or truncated image",
        f"{root.name}/c0/garbage.png": "not a decodable image",
        f"{root.name}/c0/empty.png": "empty file (0 bytes)",
        f"{root.name}/c1/huge.png": "image too large",
    }
    named = [sid for sid in expected if f"--strict: sample {sid} failed: {expected[sid]}" in r.output]
    assert len(named) == 1, r.output
    st = open_store(out)
    assert not st.is_complete and not (out / "manifest.parquet").exists()
    # The same command without --strict resumes the build and records the failures instead.
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert open_store(out).attrs["build"]["counts"]["failed"] == 4
