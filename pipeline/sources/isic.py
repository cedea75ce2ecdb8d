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


def _row_problem(csv_path: Path, n: int, row: dict) -> tuple[str | None, str | None]:
    """``(class, None)`` for a good ground-truth row, ``(None, reason)`` for a bad one (row ``n``, header = 1)."""
    image = row.get("image") or ""
    if None in row or any(row.get(c) is None for c in _ALL_COLUMNS):
        return None, f"{csv_path.name} row {n}: {len([v for v in row.values() if v is not None])} fields, expected 10"
    if not image or image in (".", "..") or "/" in image or "\\" in image or ":" in image:
        return None, f"{csv_path.name} row {n}: image id {image!r} is not a plain file name"
    try:
        values = {c: float(row[c]) for c in _ALL_COLUMNS}
    except ValueError:
        bad = next(c for c in _ALL_COLUMNS if not _is_number(row[c]))
        return None, f"{csv_path.name} row {n}: column {bad} holds {row[bad]!r}, not a number"
    hot = [c for c, v in values.items() if v > 0.5]
    if len(hot) != 1:
        return None, f"{csv_path.name} row {n}: {len(hot)} positive classes ({', '.join(hot) or 'none'}), expected one"
    return hot[0], None


def _is_number(v: str) -> bool:
    try:
        float(v)
    except ValueError:
        return False
    return True


def _read_ground_truth(csv_path: Path) -> list[tuple[str, str | None, str | None]]:
    """``(image id, class, problem)`` per row; a bad row fails its own sample, never the build."""
    with csv_path.open(newline="") as f:
        reader = csv.DictReader(f)
        cols = reader.fieldnames or []
        missing = [c for c in ("image", *_ALL_COLUMNS) if c not in cols]
        if missing:
            raise SourceError(
                f"{csv_path} lacks column(s) {', '.join(missing)}; expected image,{','.join(_ALL_COLUMNS)}"
            )
        out = []
        for n, row in enumerate(reader, start=2):
            cls, problem = _row_problem(csv_path, n, row)
            image = row.get("image") or f"row{n}"
            out.append((image if problem is None or "plain file name" not in problem else f"row{n}", cls, problem))
        return out


def _unlisted(folder: Path, ids: set[str]) -> list[str]:
    """Images in ``folder`` that no ground-truth row names (left out of the store, reported as a warning)."""
    found = [p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")] if folder.is_dir() else []
    missing = sorted(p.name for p in found if p.stem not in ids)
    if not missing:
        return []
    more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
    return [
        f"{len(missing)} image(s) in {folder.name} have no ground-truth row and are left out: "
        f"{', '.join(missing[:5])}{more}"
    ]


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
    rows = _read_ground_truth(train_csv)
    warnings = _unlisted(train_dir, {i for i, _, _ in rows})
    # A bad row keeps its place as a failed sample (label 0 is never used: the sample has no pixels).
    train = [(i, c or ISIC_CLASSES[0], p) for i, c, p in rows if c != "UNK"]
    lesions: dict[str, str] = {}
    meta = root / "ISIC_2019_Training_Metadata.csv"
    if meta.is_file():
        with meta.open(newline="") as f:
            for row in csv.DictReader(f):
                if row.get("lesion_id"):
                    lesions[row["image"]] = row["lesion_id"]
    # Images without a lesion id form their own group.
    groups = [lesions.get(i, f"image:{i}") for i, _, _ in train] if lesions else None
    labels = [ISIC_CLASSES.index(c) for _, c, _ in train]
    test_dir, test_csv = root / "ISIC_2019_Test_Input", root / "ISIC_2019_Test_GroundTruth.csv"
    has_test = test_dir.is_dir() and test_csv.is_file()
    splits = stratified_split(labels, val=val, test=0.0 if has_test else 0.2, seed=seed, groups=groups)
    items = [(_find_image(train_dir, i), lab, s, p) for (i, _, p), lab, s in zip(train, labels, splits, strict=True)]
    excluded = 0
    if has_test:
        test_rows = _read_ground_truth(test_csv)
        warnings += _unlisted(test_dir, {i for i, _, _ in test_rows})
        for image_id, c, problem in test_rows:
            if c == "UNK":
                excluded += 1
                continue
            items.append((_find_image(test_dir, image_id), ISIC_CLASSES.index(c or ISIC_CLASSES[0]), "test", problem))
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
    return FileListSource(root, items, info, warnings=warnings)
