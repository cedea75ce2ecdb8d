"""ISIC 2019 (dermoscopy, 8 diagnostic classes) from the official files.

Expected under ``--data-dir``:

* ``ISIC_2019_Training_Input/`` (25,331 JPEGs) and ``ISIC_2019_Training_GroundTruth.csv``
  (``image,MEL,NV,BCC,AK,BKL,DF,VASC,SCC,UNK``, one-hot);
* optional ``ISIC_2019_Training_Metadata.csv`` (with ``lesion_id``): validation is then carved from training
  **grouped by lesion**, so one lesion never sits on both sides;
* optional ``ISIC_2019_Test_Input/`` and ``ISIC_2019_Test_GroundTruth.csv`` (8,238 rows): the test split. Without
  them a stratified (lesion-grouped when possible) 20 % of training is held out as test instead.

The test set has an UNK class ("none of the others") absent from training. A classifier trained on the 8 known
classes cannot predict it, so UNK test images are left out of the store; their number is recorded in the
store's attributes (``dataset.extra.excluded_unk_test``). Licence: CC BY-NC 4.0 (non-commercial).
"""

from __future__ import annotations

import csv
from pathlib import Path

from topo.pipeline.sources.base import SourceError, SourceInfo, stratified_split
from topo.pipeline.sources.folder import FileListSource

ISIC_CLASSES = ("MEL", "NV", "BCC", "AK", "BKL", "DF", "VASC", "SCC")
_ALL_COLUMNS = (*ISIC_CLASSES, "UNK")


def _read_ground_truth(csv_path: Path) -> list[tuple[str, str]]:
    with csv_path.open(newline="") as f:
        reader = csv.DictReader(f)
        cols = reader.fieldnames or []
        missing = [c for c in ("image", *_ALL_COLUMNS) if c not in cols]
        if missing:
            raise SourceError(
                f"{csv_path} lacks column(s) {', '.join(missing)}; expected image,{','.join(_ALL_COLUMNS)}"
            )
        out = []
        for row in reader:
            hot = [c for c in _ALL_COLUMNS if float(row[c]) > 0.5]
            if len(hot) != 1:
                raise SourceError(f"{csv_path}: image {row['image']} has {len(hot)} positive classes, expected one")
            out.append((row["image"], hot[0]))
        return out


def _find_image(folder: Path, image_id: str) -> Path:
    for suffix in (".jpg", ".jpeg", ".png"):
        p = folder / f"{image_id}{suffix}"
        if p.exists():
            return p
    return folder / f"{image_id}.jpg"  # a missing file becomes a failed sample with its reason


def isic2019_source(root: str | Path, *, seed: int = 0, val: float = 0.1) -> FileListSource:
    root = Path(root).expanduser()
    train_dir, train_csv = root / "ISIC_2019_Training_Input", root / "ISIC_2019_Training_GroundTruth.csv"
    if not train_dir.is_dir() or not train_csv.is_file():
        raise SourceError(
            f"ISIC 2019 not found at {root}: expected ISIC_2019_Training_Input/ (JPEGs) and "
            "ISIC_2019_Training_GroundTruth.csv there (optional: ISIC_2019_Training_Metadata.csv, "
            "ISIC_2019_Test_Input/ and ISIC_2019_Test_GroundTruth.csv)"
        )
    train = [(i, c) for i, c in _read_ground_truth(train_csv) if c != "UNK"]
    lesions: dict[str, str] = {}
    meta = root / "ISIC_2019_Training_Metadata.csv"
    if meta.is_file():
        with meta.open(newline="") as f:
            for row in csv.DictReader(f):
                if row.get("lesion_id"):
                    lesions[row["image"]] = row["lesion_id"]
    # Images without a lesion id form their own group.
    groups = [lesions.get(i, f"image:{i}") for i, _ in train] if lesions else None
    labels = [ISIC_CLASSES.index(c) for _, c in train]
    test_dir, test_csv = root / "ISIC_2019_Test_Input", root / "ISIC_2019_Test_GroundTruth.csv"
    has_test = test_dir.is_dir() and test_csv.is_file()
    splits = stratified_split(labels, val=val, test=0.0 if has_test else 0.2, seed=seed, groups=groups)
    items = [(_find_image(train_dir, i), lab, s) for (i, _), lab, s in zip(train, labels, splits, strict=True)]
    excluded = 0
    if has_test:
        for image_id, c in _read_ground_truth(test_csv):
            if c == "UNK":
                excluded += 1
                continue
            items.append((_find_image(test_dir, image_id), ISIC_CLASSES.index(c), "test"))
    grouping = "grouped by lesion_id" if groups else "not grouped (no metadata CSV)"
    info = SourceInfo(
        name="isic2019",
        class_names=ISIC_CLASSES,
        license="CC BY-NC 4.0",
        non_commercial=True,
        channels=3,
        image_size=None,
        split_policy=(
            f"train/val from the training set ({grouping}, val {val:.0%}, seed {seed}); "
            + ("test = official test set without UNK" if has_test else "test = 20 % of training (no test files)")
        ),
        description="ISIC 2019 dermoscopy challenge, 8 classes",
        # Dermoscopic lesions are darker than the skin around them: the Otsu ROI takes the dark side.
        extra={"excluded_unk_test": excluded, "lesion_grouped": bool(groups), "roi_polarity": "dark"},
    )
    return FileListSource(root, items, info)
