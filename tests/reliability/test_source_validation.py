"""Sources validate what they list: bad ISIC rows fail their own sample (with the row number), never read outside
the dataset, unlisted images are warned about; folder ids keep the extension; npz labels must fit the classes."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from fixtures import datasets

from topo.pipeline.job import check_records
from topo.pipeline.sources import SourceError
from topo.pipeline.sources.base import ReadFailure
from topo.pipeline.sources.folder import folder_source
from topo.pipeline.sources.isic import isic2019_source
from topo.pipeline.sources.npz import NpzSource

COLS = ["MEL", "NV", "BCC", "AK", "BKL", "DF", "VASC", "SCC", "UNK"]


def _one_hot(cls: str) -> list[str]:
    return ["1.0" if c == cls else "0.0" for c in COLS]


@pytest.fixture()
def hostile_isic(tmp_path: Path) -> Path:
    root = datasets.write_isic2019(tmp_path / "isic", n=12)
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(b"outside the dataset")
    gt = root / "ISIC_2019_Training_GroundTruth.csv"
    with gt.open() as f:
        rows = list(csv.reader(f))
    rows.pop(5)  # ISIC_0000004 loses its row: a warning, not a silent drop
    rows += [
        ["../secret", *_one_hot("MEL")],  # row 13
        [str(secret.with_suffix("")), *_one_hot("NV")],  # row 14: an absolute id
        ["ISIC_0000002", "1.0"],  # row 15: short
        ["ISIC_0000003", "yes", *_one_hot("NV")[1:]],  # row 16: not a number
        ["ISIC_0000001", *(["1.0", "1.0"] + ["0.0"] * 7)],  # row 17: two-hot
    ]
    with gt.open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    return root


def test_bad_isic_rows_fail_their_own_sample_with_the_row_number(hostile_isic: Path) -> None:
    src = isic2019_source(hostile_isic)
    records = src.records()
    reasons = [r for r in check_records(records, 8) if r is not None]
    expected = [
        "row 13: image id '../secret' is not a plain file name",
        "row 14: image id",
        "row 15: ",
        "row 16: column MEL holds 'yes', not a number",
        "row 17: 2 positive classes (MEL, NV), expected one",
    ]
    for fragment in expected:
        assert sum(fragment in r for r in reasons) == 1, (fragment, reasons)
    bad = [r for r in records if r.problem]
    payloads = list(src.payloads(bad))
    assert all(isinstance(p, ReadFailure) for p in payloads)  # nothing outside the dataset was read
    assert all(r.source_ref.startswith("ISIC_2019_Training_Input/") for r in records)
    (warning,) = src.warnings()
    assert (
        warning.startswith("1 image(s) in ISIC_2019_Training_Input have no ground-truth row")
        and "ISIC_0000004" in warning
    )


def test_folder_ids_keep_the_extension_and_unsupported_files_are_counted(tmp_path: Path) -> None:
    root = datasets.write_image_folder(tmp_path / "ds", "png", per_class=2)
    (root / "benign" / "img00.jpg").write_bytes((root / "benign" / "img00.png").read_bytes())
    (root / "benign" / "anim.gif").write_bytes(b"GIF89a")
    (root / "malignant" / "notes.txt").write_text("x")
    src = folder_source(root)
    ids = [r.sample_id for r in src.records()]
    assert "ds/benign/img00.png" in ids and "ds/benign/img00.jpg" in ids
    assert all(r is None for r in check_records(src.records(), 2))  # no duplicate ids
    (warning,) = src.warnings()
    assert warning.startswith("2 file(s) skipped, unsupported extension(s) .gif, .txt")
    assert "benign/anim.gif" in warning and "malignant/notes.txt" in warning


def test_npz_labels_must_fit_the_classes(tmp_path: Path) -> None:
    path = datasets.write_medmnist_npz(tmp_path / "x.npz", {"train": 8, "test": 4}, size=8)
    with np.load(path) as z:
        arrays = dict(z)
    arrays["train_labels"][0] = 99
    np.savez(tmp_path / "stray.npz", **arrays)
    with pytest.raises(SourceError, match=r"labels run 0\.\.99 but 97 of those classes have no sample"):
        NpzSource(tmp_path / "stray.npz", name="stray")
    arrays["class_names"] = np.array(["a", "b"])
    np.savez(tmp_path / "named.npz", **arrays)
    src = NpzSource(tmp_path / "named.npz", name="named")
    reasons = [r for r in check_records(src.records(), len(src.class_names)) if r]
    assert reasons == ["label 99 out of range [0, 2)"]
