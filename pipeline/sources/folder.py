"""Image files on disk: a generic class-per-folder reader, plus Kvasir (one folder per class)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from topo.pipeline.sources.base import (
    SPLITS,
    Payload,
    ReadFailure,
    SampleRecord,
    Source,
    SourceError,
    SourceInfo,
    stratified_split,
)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})


def _images_in(d: Path) -> list[Path]:
    return sorted(p for p in d.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _others_in(d: Path) -> list[Path]:
    """Files a class folder holds that are not images topo reads (hidden files left out)."""
    return sorted(
        p for p in d.rglob("*") if p.is_file() and p.suffix.lower() not in IMAGE_SUFFIXES and not p.name.startswith(".")
    )


def skipped_warning(root: Path, skipped: Sequence[Path], limit: int = 5) -> list[str]:
    """A warning counting and listing the files left out for their extension (empty if none)."""
    if not skipped:
        return []
    by_ext = sorted({p.suffix.lower() or "(none)" for p in skipped})
    names = ", ".join(p.relative_to(root).as_posix() for p in skipped[:limit])
    more = f" and {len(skipped) - limit} more" if len(skipped) > limit else ""
    return [
        f"{len(skipped)} file(s) skipped, unsupported extension(s) {', '.join(by_ext)} "
        f"(read: {', '.join(sorted(IMAGE_SUFFIXES))}): {names}{more}"
    ]


class FileListSource(Source):
    """Files with known labels and splits; payloads are the encoded bytes (decoded on the workers).

    ``items`` are ``(path, label, split)`` or ``(path, label, split, problem)``: a problem (a bad listing row)
    fails that sample without its file being read. With ``keep_extension`` the sample id keeps the file's
    extension, so ``a.png`` and ``a.jpg`` in one folder are two samples, not a duplicate id.
    """

    def __init__(
        self,
        root: Path,
        items: Sequence[tuple],
        info: SourceInfo,
        *,
        keep_extension: bool = False,
        warnings: Sequence[str] = (),
    ) -> None:
        self.root, self.items, self._info = root, list(items), info
        self.keep_extension, self._warnings = keep_extension, list(warnings)

    def info(self) -> SourceInfo:
        return self._info

    def warnings(self) -> list[str]:
        return list(self._warnings)

    def records(self) -> list[SampleRecord]:
        out = []
        for path, label, split, *problem in self.items:
            rel = path.relative_to(self.root).as_posix()
            stem = rel if self.keep_extension else rel.rsplit(".", 1)[0]
            out.append(SampleRecord(f"{self._info.name}/{stem}", rel, int(label), split, *problem))
        return out

    def payloads(self, records: Sequence[SampleRecord]) -> Iterator[Payload]:
        for r in records:
            if r.problem is not None:  # never read what a bad listing row names (it may point anywhere)
                yield ReadFailure(r.problem)
                continue
            try:
                yield (self.root / r.source_ref).read_bytes()
            except OSError as e:  # an unreadable file fails that sample, not the build
                yield ReadFailure(f"unreadable file: {e}")

    def content_options(self) -> dict[str, Any]:
        return {"split_policy": self._info.split_policy}

    def input_files(self, records: Sequence[SampleRecord]) -> list[Path | None]:
        return [self.root / r.source_ref for r in records]


def folder_source(
    root: str | Path,
    *,
    name: str | None = None,
    val: float = 0.1,
    test: float = 0.2,
    seed: int = 0,
    license: str = "unknown",
) -> FileListSource:
    """Class sub-folders (``root/<class>/*.png``), or ``root/{train,val,test}/<class>/`` when those exist.

    Without split folders, a seeded stratified split (``val``, ``test`` fractions) is drawn and recorded.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise SourceError(f"no folder at {root}: expected <root>/<class_name>/<image files>")
    split_dirs = [root / s for s in SPLITS if (root / s).is_dir()]
    items: list[tuple[Path, int, str]] = []
    skipped: list[Path] = []
    if split_dirs:
        classes = sorted({c.name for d in split_dirs for c in d.iterdir() if c.is_dir()})
        for d in split_dirs:
            for ci, c in enumerate(classes):
                items += [(p, ci, d.name) for p in _images_in(d / c)] if (d / c).is_dir() else []
                skipped += _others_in(d / c) if (d / c).is_dir() else []
        policy = "from train/val/test folders"
    else:
        classes = sorted(c.name for c in root.iterdir() if c.is_dir())
        skipped = [p for c in classes for p in _others_in(root / c)]
        files = [(p, ci) for ci, c in enumerate(classes) for p in _images_in(root / c)]
        splits = stratified_split([ci for _, ci in files], val=val, test=test, seed=seed)
        items = [(p, ci, s) for (p, ci), s in zip(files, splits, strict=True)]
        policy = f"stratified random split, seed {seed}, val {val}, test {test}"
    if not classes or not items:
        raise SourceError(f"{root} holds no class folders with images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    info = SourceInfo(
        name=name or root.name,
        class_names=tuple(classes),
        license=license,
        channels=3,
        image_size=None,
        split_policy=policy,
    )
    return FileListSource(root, items, info, keep_extension=True, warnings=skipped_warning(root, skipped))


KVASIR_CLASSES = (
    "dyed-lifted-polyps",
    "dyed-resection-margins",
    "esophagitis",
    "normal-cecum",
    "normal-pylorus",
    "normal-z-line",
    "polyps",
    "ulcerative-colitis",
)


def kvasir_source(root: str | Path, *, seed: int = 0, val: float = 0.1) -> FileListSource:
    """Kvasir v1 (8 × 500) or v2 (8 × 1,000), detected from the file counts.

    There is no official split. Test is a seeded stratified 20 % (the paper's 3,200 / 800 on v1); validation is a
    further ``val`` fraction of the rest.
    """
    root = Path(root).expanduser()
    if root.is_dir() and not (root / KVASIR_CLASSES[0]).is_dir():
        nested = [d for d in root.iterdir() if (d / KVASIR_CLASSES[0]).is_dir()]
        root = nested[0] if nested else root
    missing = [c for c in KVASIR_CLASSES if not (root / c).is_dir()]
    if missing:
        raise SourceError(f"Kvasir not found at {root}: expected the class folders {', '.join(KVASIR_CLASSES)}")
    files = [(p, ci) for ci, c in enumerate(KVASIR_CLASSES) for p in _images_in(root / c)]
    counts = {c: sum(1 for _, ci in files if ci == i) for i, c in enumerate(KVASIR_CLASSES)}
    per = set(counts.values())
    version = {500: "v1", 1000: "v2"}.get(next(iter(per)), "unknown") if len(per) == 1 else "unknown"
    splits = stratified_split([ci for _, ci in files], val=val * 0.8, test=0.2, seed=seed)
    info = SourceInfo(
        name="kvasir",
        class_names=KVASIR_CLASSES,
        license="Kvasir: free for research and educational use (see the dataset's terms)",
        non_commercial=True,
        channels=3,
        image_size=None,
        split_policy=f"stratified: test 20 %, val {val:.0%} of the rest, seed {seed}",
        description=f"Kvasir {version} ({len(files)} images; per-class counts {sorted(per)})",
        extra={"version": version},
    )
    return FileListSource(root, [(p, ci, s) for (p, ci), s in zip(files, splits, strict=True)], info)
