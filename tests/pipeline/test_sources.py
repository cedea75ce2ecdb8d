"""Dataset sources: MedMNIST files read exactly as the ``medmnist`` package reads them, stable ids, clear errors,
and decoding that fails one sample with a reason instead of the build."""

from __future__ import annotations

import io
from pathlib import Path

import medmnist
import numpy as np
import pytest
from PIL import Image

from topo.pipeline.decode import SampleError, decode
from topo.pipeline.sources import DATASETS, ReadFailure, SourceError, demo_path, get_source
from topo.pipeline.sources.folder import KVASIR_CLASSES
from topo.pipeline.sources.isic import ISIC_CLASSES


def _all_payloads(src, records):
    return list(src.payloads(records))


@pytest.mark.parametrize(
    ("flag", "cls"), [("breastmnist", medmnist.BreastMNIST), ("pneumoniamnist", medmnist.PneumoniaMNIST)]
)
def test_shared_medmnist_file_matches_the_medmnist_package(npz_data, flag, cls):
    src = get_source(flag, data_dir=npz_data, size=28)
    records = src.records()
    payloads = _all_payloads(src, records)
    src.close()
    for split in ("train", "val", "test"):
        ref = cls(split=split, root=str(npz_data), download=False, size=28)
        idx = [i for i, r in enumerate(records) if r.split == split]
        assert len(idx) == len(ref), split
        ours = np.stack([payloads[i] for i in idx])
        np.testing.assert_array_equal(ours, ref.imgs)
        np.testing.assert_array_equal([records[i].label for i in idx], ref.labels.ravel())
        # Item by item through the package's own __getitem__ (PIL image) for a few samples, decoded our way.
        for j in (0, len(ref) // 2, len(ref) - 1):
            pil, label = ref[j]
            got = decode(payloads[idx[j]], height=28, width=28, channels=1).image
            np.testing.assert_array_equal(got[..., 0], np.asarray(pil))
            assert records[idx[j]].label == int(label[0])
    info = src.info()
    expected = medmnist.INFO[flag]
    assert info.class_names == tuple(expected["label"][str(i)] for i in range(len(expected["label"])))
    assert info.license == expected["license"] == "CC BY 4.0"
    assert (info.channels, info.image_size) == (1, 28)


def test_demo_is_the_embedded_breastmnist(npz_data):
    # Under -m npz_data this compares the embedded file with the real one beside the repository; by default
    # with the generated folder's copy, it checks that `demo` and `breastmnist` read one file alike.
    assert demo_path().is_file()
    demo, shared = get_source("demo"), get_source("breastmnist", data_dir=npz_data)
    assert demo.records() == shared.records()
    for a, b in zip(_all_payloads(demo, demo.records()), _all_payloads(shared, shared.records()), strict=True):
        np.testing.assert_array_equal(a, b)
    assert [r.split for r in demo.records()].count("train") == 546


def test_ids_are_stable_unique_and_readable(npz_data):
    a = get_source("breastmnist", data_dir=npz_data).records()
    b = get_source("BreastMNIST", data_dir=str(npz_data)).records()
    assert a == b
    assert len({r.sample_id for r in a}) == len(a) == 780
    assert a[0].sample_id == "breastmnist_28/train/000000"
    assert a[546].sample_id == "breastmnist_28/val/000000"
    assert a[546].source_ref == "breastmnist.npz:val_images[0]"


def test_payloads_of_any_run_of_records_match_the_file(npz_data):
    # The reader streams forward; asking for an earlier row (a resumed build) must restart, not misread.
    src = get_source("pneumoniamnist", data_dir=npz_data)
    rec = src.records()
    with np.load(npz_data / "pneumoniamnist.npz") as z:
        train, val = z["train_images"], z["val_images"]
    for lo, hi in [(4700, 4712), (10, 20), (0, 3), (4705, 4709)]:  # crosses train/val; then goes backwards
        got = _all_payloads(src, rec[lo:hi])
        want = [train[i] if i < len(train) else val[i - len(train)] for i in range(lo, hi)]
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w)
    src.close()


def test_npz_source_reads_mednist_with_its_class_names(npz_data):
    src = get_source("npz", data_dir=npz_data / "mednist_64_small.npz")
    info = src.info()
    assert info.class_names == ("AbdomenCT", "BreastMRI", "CXR", "ChestCT", "Hand", "HeadCT")
    assert (info.channels, info.image_size, info.name) == (1, 64, "mednist_64_small")
    rec = src.records()
    with np.load(npz_data / "mednist_64_small.npz") as z:
        n_train = len(z["train_images"])
        assert len(rec) == n_train + len(z["val_images"]) + len(z["test_images"])
        assert {r.split for r in rec} == {"train", "val", "test"}
        np.testing.assert_array_equal(next(src.payloads(rec[n_train : n_train + 1])), z["val_images"][0])
        assert rec[n_train].label == int(z["val_labels"][0, 0])


# --------------------------------------------------------------------------------------------- errors
def test_unknown_dataset_lists_the_valid_names():
    with pytest.raises(SourceError) as e:
        get_source("cifar10")
    msg = str(e.value)
    assert "unknown dataset 'cifar10'" in msg
    for name in ("demo", "pathmnist", "octmnist", "organsmnist", "isic2019", "kvasir", "folder", "npz"):
        assert name in msg
    assert set(DATASETS) >= {"demo", "breastmnist", "isic2019", "kvasir", "folder", "npz"}


@pytest.mark.parametrize(("size", "fname"), [(28, "pathmnist.npz"), (224, "pathmnist_224.npz")])
def test_missing_medmnist_file_names_the_expected_file(tmp_path, size, fname):
    with pytest.raises(SourceError) as e:
        get_source("pathmnist", data_dir=tmp_path, size=size)
    assert str(tmp_path / fname) in str(e.value) and "--download" in str(e.value)


def test_missing_data_dirs_name_the_expected_layout(tmp_path):
    with pytest.raises(SourceError, match=r"ISIC_2019_Training_Input/.*ISIC_2019_Training_GroundTruth\.csv"):
        get_source("isic2019", data_dir=tmp_path)
    with pytest.raises(SourceError, match="dyed-lifted-polyps, dyed-resection-margins"):
        get_source("kvasir", data_dir=tmp_path)
    with pytest.raises(SourceError, match=r"no folder at .*nope: expected <root>/<class_name>/<image files>"):
        get_source("folder", data_dir=tmp_path / "nope")
    with pytest.raises(SourceError, match="holds no class folders with images"):
        get_source("folder", data_dir=tmp_path)
    with pytest.raises(SourceError, match=r"no file at .*x\.npz"):
        get_source("npz", data_dir=tmp_path / "x.npz")
    for name in ("isic2019", "kvasir", "folder", "npz"):
        with pytest.raises(SourceError, match=f"--dataset {name} needs --data-dir"):
            get_source(name)
    with pytest.raises(SourceError, match="only available for MedMNIST"):
        get_source("kvasir", data_dir=tmp_path, download=True)
    with pytest.raises(SourceError, match=r"size must be one of \(28, 64, 128, 224\)"):
        get_source("pathmnist", data_dir=tmp_path, size=32)


def test_npz_not_in_medmnist_layout_is_refused(tmp_path):
    np.savez(tmp_path / "odd.npz", x=np.zeros((2, 4, 4), np.uint8))
    with pytest.raises(SourceError, match=r"not in MedMNIST layout: expected train_images.*found \['x'\]"):
        get_source("npz", data_dir=tmp_path / "odd.npz")
    np.savez(tmp_path / "ml.npz", train_images=np.zeros((2, 4, 4), np.uint8), train_labels=np.zeros((2, 3), np.uint8))
    with pytest.raises(SourceError, match="multi-label"):
        get_source("npz", data_dir=tmp_path / "ml.npz")


# --------------------------------------------------------------------------------------------- folders
def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _write_folder(root: Path, classes=("benign", "malignant"), per_class=10) -> None:
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            (root / c / f"img{i:02d}.png").write_bytes(_png(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)))
    (root / classes[0] / "notes.txt").write_text("not an image")


def test_folder_source_split_is_seeded_stratified_and_recorded(tmp_path):
    _write_folder(tmp_path / "ds", per_class=20)
    a = get_source("folder", data_dir=tmp_path / "ds", seed=0)
    b = get_source("folder", data_dir=tmp_path / "ds", seed=0)
    c = get_source("folder", data_dir=tmp_path / "ds", seed=1)
    ra, rc = a.records(), c.records()
    assert ra == b.records() and len(ra) == 40
    assert [r.split for r in ra] != [r.split for r in rc]
    assert ra[0].sample_id == "ds/benign/img00.png" and ra[0].source_ref == "benign/img00.png"
    for label in (0, 1):
        splits = [r.split for r in ra if r.label == label]
        assert (splits.count("train"), splits.count("val"), splits.count("test")) == (14, 2, 4)
    info = a.info()
    assert info.class_names == ("benign", "malignant") and info.channels == 3 and info.image_size is None
    assert "seed 0" in info.split_policy and a.content_options() == {"split_policy": info.split_policy}
    payload = next(a.payloads(ra[:1]))
    assert isinstance(payload, bytes) and payload[:8] == b"\x89PNG\r\n\x1a\n"


def test_folder_source_uses_split_folders_when_present(tmp_path):
    for split, n in (("train", 3), ("test", 2)):
        _write_folder(tmp_path / "ds" / split, per_class=n)
    rec = get_source("folder", data_dir=tmp_path / "ds").records()
    assert [r.split for r in rec].count("train") == 6 and [r.split for r in rec].count("test") == 4


def test_a_tiny_folder_dataset_still_splits(tmp_path):
    # 3 images per class: too few for a stratified 10 % validation split; a plain seeded split is used.
    _write_folder(tmp_path / "ds", per_class=3)
    rec = get_source("folder", data_dir=tmp_path / "ds").records()
    assert len(rec) == 6 and all(r.split in ("train", "val", "test") for r in rec)
    assert [r.split for r in rec].count("train") >= 3
    assert rec == get_source("folder", data_dir=tmp_path / "ds").records()


def test_a_tiny_isic_dataset_splits_with_lesions_kept_whole(isic_dir):
    # 24 images, 3 classes, two images per lesion: too few per class for stratified group folds.
    import csv

    rec = get_source("isic2019", data_dir=isic_dir).records()
    assert len(rec) == 24 and {r.split for r in rec} <= {"train", "val", "test"}
    with (isic_dir / "ISIC_2019_Training_Metadata.csv").open() as f:
        lesion = {row["image"]: row["lesion_id"] for row in csv.DictReader(f)}
    sides: dict[str, set[str]] = {}
    for r in rec:
        sides.setdefault(lesion[r.sample_id.rsplit("/", 1)[-1]], set()).add(r.split)
    assert all(len(s) == 1 for s in sides.values())
    assert [r.split for r in rec].count("train") >= 12
    assert rec == get_source("isic2019", data_dir=isic_dir).records()


def test_a_vanished_file_becomes_a_read_failure(tmp_path):
    _write_folder(tmp_path / "ds", per_class=3)
    src = get_source("folder", data_dir=tmp_path / "ds")
    rec = src.records()
    (tmp_path / "ds" / rec[1].source_ref).unlink()
    got = list(src.payloads(rec[:3]))
    assert isinstance(got[0], bytes) and isinstance(got[2], bytes)
    assert isinstance(got[1], ReadFailure) and "unreadable file" in got[1].reason


def test_kvasir_layout_is_detected(tmp_path):
    root = tmp_path / "kvasir-dataset" / "kvasir-dataset"
    _write_folder(root, classes=KVASIR_CLASSES, per_class=5)
    src = get_source("kvasir", data_dir=tmp_path / "kvasir-dataset")  # one nesting level is found
    assert src.info().class_names == KVASIR_CLASSES and src.info().non_commercial
    assert len(src.records()) == 40 and [r.split for r in src.records()].count("test") == 8


def test_isic_keeps_lesions_on_one_side_and_drops_unk_test(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "ISIC_2019_Training_Input").mkdir()
    (tmp_path / "ISIC_2019_Test_Input").mkdir()
    gt = ["image," + ",".join((*ISIC_CLASSES, "UNK"))]
    meta = ["image,age_approx,anatom_site_general,lesion_id,sex"]
    for i in range(80):
        cls = i % 4
        gt.append(f"ISIC_{i:07d}," + ",".join("1.0" if j == cls else "0.0" for j in range(9)))
        meta.append(f"ISIC_{i:07d},50,torso,lesion_{i // 3},male")
        img = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
        (tmp_path / "ISIC_2019_Training_Input" / f"ISIC_{i:07d}.jpg").write_bytes(_png(img))
    (tmp_path / "ISIC_2019_Training_GroundTruth.csv").write_text("\n".join(gt) + "\n")
    (tmp_path / "ISIC_2019_Training_Metadata.csv").write_text("\n".join(meta) + "\n")
    test_gt = ["image," + ",".join((*ISIC_CLASSES, "UNK"))]
    for i, cls in enumerate([0, 8, 2]):  # one UNK
        test_gt.append(f"ISIC_T{i:06d}," + ",".join("1.0" if j == cls else "0.0" for j in range(9)))
    (tmp_path / "ISIC_2019_Test_GroundTruth.csv").write_text("\n".join(test_gt) + "\n")
    src = get_source("isic2019", data_dir=tmp_path)
    rec = src.records()
    assert len(rec) == 82
    assert src.info().extra == {"excluded_unk_test": 1, "lesion_grouped": True, "roi_polarity": "dark"}
    assert src.info().license == "CC BY-NC 4.0" and src.info().non_commercial
    side = {}
    for r in rec:
        if r.split == "test":
            continue
        lesion = int(r.sample_id.rsplit("_", 1)[1]) // 3
        assert side.setdefault(lesion, r.split) == r.split, f"lesion {lesion} on both sides"
    assert {r.split for r in rec} == {"train", "val", "test"}
    # Test images are missing on disk: read failures with the path, not an exception.
    assert isinstance(next(iter(src.payloads(rec[-2:]))), ReadFailure)


# --------------------------------------------------------------------------------------------- decoding
def test_decoding_rules():
    grey = np.arange(28 * 28, dtype=np.uint16).reshape(28, 28) * 80
    d = decode(grey, height=28, width=28, channels=1)
    np.testing.assert_array_equal(d.image[..., 0], np.round(grey * (255 / 65535)).astype(np.uint8))
    rgb = decode(
        _png(np.dstack([np.full((40, 60), v, np.uint8) for v in (255, 0, 0)])), height=20, width=20, channels=1
    )
    assert rgb.image.shape == (20, 20, 1) and (rgb.image == 76).all()  # BT.601 luma of pure red
    a = decode(np.full((10, 10), 0.5), height=10, width=10, channels=3)
    assert a.image.shape == (10, 10, 3) and (a.image == 128).all()
    # The content hash is of the decoded pixels before any conversion: same pixels, same hash.
    img = np.random.default_rng(0).integers(0, 256, (30, 30, 3), dtype=np.uint8)
    assert (
        decode(_png(img), height=8, width=8, channels=3).input_sha256
        == decode(img, height=28, width=28, channels=1).input_sha256
    )


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "empty file"),
        (b"this is not an image", "not a decodable image"),
        (_png(np.zeros((64, 64), np.uint8))[:60], "corrupt or truncated image"),
        (np.zeros((28, 28, 2), np.uint8), r"wrong shape \(28, 28, 2\)"),
        (np.zeros((2, 28, 28, 3), np.uint8), r"wrong shape \(2, 28, 28, 3\)"),
        (np.zeros((0, 28), np.uint8), "zero-size image"),
        (np.full((4, 4), np.nan), "non-finite values"),
        (np.full((4, 4), -3, np.int16), "negative pixel values"),
        (np.zeros((4, 4), np.complex64), "unsupported pixel type"),
        (ReadFailure("unreadable file: gone"), "unreadable file: gone"),
    ],
)
def test_undecodable_payloads_fail_with_a_reason(payload, reason):
    with pytest.raises(SampleError, match=reason) as e:
        decode(payload, height=28, width=28, channels=1)
    assert e.value.reason
