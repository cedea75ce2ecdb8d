"""Moving a finished store between teams as one file: ``topo store pack`` and ``topo store unpack``.

A packed store is a plain zip archive whose top level *is* the store root (``zarr.json``,
``manifest.parquet``, ``checksums.parquet``, ``images/zarr.json``, ``images/c/0/0/0/0``, ...), so Zarr's
``ZipStore`` and :func:`topo.store_schema.open_store` read it in place, without unpacking. Members are
stored uncompressed (``ZIP_STORED``): the chunks are already Blosc-compressed, and a stored member is read
straight at its offset.

The archive is deterministic: members in sorted order, fixed timestamps and permissions, so packing the
same store twice gives the same bytes (and the same file hash to compare between teams).

Unpacking treats the archive as untrusted input. Every member is checked before anything is written:
absolute paths, drive letters, ``..`` components, backslashes, symbolic links and other non-regular
entries, duplicate names and encrypted members are refused with a
:class:`~topo.store_schema.errors.StoreError` naming the member. Files are then written by this module
(never by ``ZipFile.extractall``) into a fresh temporary directory beside the target, each path re-checked
to resolve inside it, and that directory is renamed into place only once every member is written and the
store opens (and, by default, verifies). Nothing in an archive is executed or unpickled.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from topo.store_schema.errors import StoreError
from topo.store_schema.layout import StoreFiles
from topo.store_schema.location import Location
from topo.store_schema.members import is_temporary, member_filter, size_budget

# The earliest date a zip can hold; a fixed stamp makes archives reproducible.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_FILE_MODE = 0o100644  # regular file, rw-r--r--, in the high 16 bits of external_attr
_COPY_BLOCK = 1 << 20
_S_IFMT = 0o170000


@dataclass(frozen=True)
class PackResult:
    """What :func:`pack_store` wrote.

    Attributes:
        path: the zip file.
        members: number of files in it.
        bytes: size of the zip file.
        fingerprint: the store's fingerprint (identical after unpacking).
        skipped: temporary files found in the store directory and left out.
    """

    path: Path
    members: int
    bytes: int
    fingerprint: str | None
    skipped: tuple[str, ...] = field(default_factory=tuple)


_is_temporary = is_temporary


def _store_files(root: Path) -> tuple[list[tuple[str, Path]], list[str]]:
    """Regular files under ``root`` as sorted ``(archive name, path)``, and the temporary files skipped."""
    files: list[tuple[str, Path]] = []
    skipped: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        d = Path(dirpath)
        for name in [*dirnames, *filenames]:
            p = d / name
            if p.is_symlink():
                # Following a link could put any file of this machine into an archive meant for others.
                raise StoreError(f"{p} is a symbolic link; a store to pack must hold only regular files")
        for name in filenames:
            p = d / name
            rel = p.relative_to(root).as_posix()
            if not p.is_file():
                raise StoreError(f"{p} is not a regular file; a store to pack must hold only regular files")
            if _is_temporary(rel):
                skipped.append(rel)
                continue
            files.append((rel, p))
    files.sort()
    return files, sorted(skipped)


def pack_store(
    src: str | os.PathLike[str],
    out_zip: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    verify: bool = False,
) -> PackResult:
    """Pack a finished store directory into one zip file that ``open_store`` reads in place.

    Args:
        src: the store directory (a finished build).
        out_zip: the zip file to write; its name must end in ``.zip``.
        overwrite: replace ``out_zip`` if it exists.
        verify: first re-read every chunk of ``src`` against its checksums, so a damaged store is not
            shipped.

    Returns:
        A :class:`PackResult`.

    Raises:
        StoreError: ``src`` is not a store directory, holds a link or special file, or lacks
            ``checksums.parquet``; ``out_zip`` exists (without ``overwrite``), does not end in ``.zip``,
            or lies inside the store; with ``verify``, a chunk does not match its checksum.
        StoreIncompleteError: the store's build has not finished (resume it first).
    """
    from topo.store_schema.store import open_store

    root = Path(src)
    loc = Location.parse(root)
    if loc.kind != "dir":
        raise StoreError(f"pack needs a store directory, got the {loc.kind} location {src}")
    out = Path(out_zip)
    if out.suffix.lower() != ".zip":
        # open_store recognises a packed store by this suffix.
        raise StoreError(f"the packed file must end in .zip, got {out}")
    if out.exists() and not overwrite:
        raise StoreError(f"{out} exists; choose another name or pass --overwrite (overwrite=True) to replace it")
    if out.resolve().is_relative_to(root.resolve()):
        raise StoreError(f"{out} is inside the store {root}; write the zip elsewhere")
    store = open_store(root)
    # StoreIncompleteError for an unfinished build, StoreError naming any other contract problem.
    store.validate()
    if not loc.exists(StoreFiles.CHECKSUMS):
        # Without it the receiving team cannot run `topo store verify`.
        raise StoreError(f"{root}: {StoreFiles.CHECKSUMS} is missing; nobody could verify the copy")
    if verify:
        from topo.store_schema.verify import verify_store

        report = verify_store(root)
        if not report.ok:
            raise StoreError(f"{root} fails verification, not packing it: {'; '.join(report.problems)}")
    files, skipped = _store_files(root)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            for rel, path in files:
                info = zipfile.ZipInfo(rel, date_time=_ZIP_EPOCH)
                info.compress_type = zipfile.ZIP_STORED
                info.create_system = 3  # Unix, so that external_attr carries the file mode
                info.external_attr = _FILE_MODE << 16
                info.file_size = path.stat().st_size  # lets zipfile choose ZIP64 only where a file needs it
                with path.open("rb") as fin, zf.open(info, "w") as fout:
                    shutil.copyfileobj(fin, fout, _COPY_BLOCK)
        # mkstemp makes the file 0600; a packed store is meant to be shared, so give it a normal file's mode.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o644 & ~umask)
        os.replace(tmp, out)  # a reader never sees half an archive
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return PackResult(out, len(files), out.stat().st_size, store.fingerprint, tuple(skipped))


# ------------------------------------------------------------------------------------------------ unpack
def _member_problem(info: zipfile.ZipInfo) -> str | None:
    """Why an archive member may not be extracted; ``None`` for a plain relative file or directory."""
    name = info.filename
    if not name or "\x00" in name:
        return "empty name or NUL byte in the name"
    if "\\" in name:
        # A separator on Windows, where "..\\x" would escape. Zarr keys never contain one.
        return "backslash in the path"
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "absolute path"
    if any(p == ".." for p in PurePosixPath(name).parts):
        return "'..' component in the path"
    kind = (info.external_attr >> 16) & _S_IFMT
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        # The Unix mode in external_attr's high bits marks links (S_IFLNK), devices, FIFOs and sockets.
        # Checked whatever create_system claims, since some tools honour the mode regardless.
        what = "symbolic link" if kind == stat.S_IFLNK else f"special file (mode {oct(kind)})"
        return f"{what}; only regular files are allowed"
    if info.flag_bits & 0x1:
        return "encrypted member"
    return None


def _plan(zf: zipfile.ZipFile, zip_path: Path) -> tuple[str, list[zipfile.ZipInfo]]:
    """Check every member; return the prefix to strip (``''`` or ``'name/'``) and the file members."""
    seen: set[str] = set()
    bad: list[str] = []
    files: list[zipfile.ZipInfo] = []
    for info in zf.infolist():
        problem = _member_problem(info)
        if problem is None and info.filename in seen:
            problem = "duplicate member name"
        if problem:
            bad.append(f"{info.filename!r} ({problem})")
            continue
        seen.add(info.filename)
        if not info.is_dir():
            files.append(info)
    if bad:
        raise StoreError(f"{zip_path}: refusing to unpack unsafe member(s): {'; '.join(bad)}")
    names = {i.filename for i in files}
    if "zarr.json" in names:
        return "", files
    # `zip -r demo.zip demo.zarr` gives one top folder holding the store: accept it, strip that folder.
    tops = {i.filename.split("/", 1)[0] for i in files}
    if len(tops) == 1 and f"{next(iter(tops))}/zarr.json" in names:
        return f"{next(iter(tops))}/", files
    raise StoreError(f"{zip_path} is not a packed topo store: no zarr.json at its top level")


def _check_contents(zf: zipfile.ZipFile, zip_path: Path, prefix: str, files: list[zipfile.ZipInfo]) -> None:
    """Refuse, before writing anything, members the store does not declare and a size beyond its declared one."""
    root = zf.getinfo(f"{prefix}zarr.json")
    if root.file_size > 16 << 20:
        raise StoreError(f"{zip_path}: zarr.json is {root.file_size:,} bytes; a store's is a few kilobytes")
    try:
        attrs = json.loads(zf.read(root))["attributes"]["topo"]
        allowed, budget = member_filter(attrs), size_budget(attrs)
    except (ValueError, KeyError, TypeError) as e:
        raise StoreError(f"{zip_path}: its zarr.json does not describe a topo store ({e})") from e
    unknown = sorted(rel for i in files if (rel := i.filename[len(prefix) :]) and not allowed(rel))
    if unknown:
        more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
        raise StoreError(
            f"{zip_path}: refusing to unpack member(s) a topo store does not hold: {', '.join(unknown[:10])}{more}"
        )
    total = sum(i.file_size for i in files)
    if total > budget:
        raise StoreError(
            f"{zip_path} unpacks to {total:,} bytes, more than the {budget:,} its store can hold "
            "(raw array sizes from its geometry, plus tables); refusing it"
        )


def _target(base: Path, rel: str) -> Path:
    """Where ``rel`` is written; it must resolve inside ``base`` (zip-slip guard behind the name checks)."""
    dest = (base / rel).resolve()
    if not dest.is_relative_to(base):
        raise StoreError(f"refusing to unpack member {rel!r}: it would land outside {base}")
    return dest


def unpack_store(zip_path: str | os.PathLike[str], out_dir: str | os.PathLike[str], *, verify: bool = True) -> Path:
    """Safely extract a packed store into ``out_dir``, which must not exist or be empty.

    Args:
        zip_path: a zip made by :func:`pack_store` (or one holding a single store folder at its top).
        out_dir: where the store directory goes.
        verify: after extracting, re-read every chunk against ``checksums.parquet``.

    Returns:
        ``out_dir``.

    Raises:
        StoreError: the file is not a zip, holds an unsafe member (named in the message), is not a store or
            fails verification, or ``out_dir`` is not empty. Nothing is left behind on failure.
    """
    from topo.store_schema.store import open_store
    from topo.store_schema.verify import verify_store

    zp = Path(zip_path)
    out = Path(out_dir)
    if not zp.is_file():
        raise StoreError(f"no file at {zp}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise StoreError(f"{out} exists and is not an empty directory; choose another target")
    try:
        zf = zipfile.ZipFile(zp)
    except zipfile.BadZipFile as e:
        raise StoreError(f"{zp} is not a zip file: {e}") from e
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".unpack", dir=out.parent)).resolve()
    try:
        with zf:
            prefix, files = _plan(zf, zp)
            _check_contents(zf, zp, prefix, files)
            total = sum(i.file_size for i in files)
            free = shutil.disk_usage(staging).free
            if total > free:
                raise StoreError(f"{zp} unpacks to {total:,} bytes; only {free:,} are free in {out.parent}")
            for info in files:
                rel = info.filename[len(prefix) :]
                if not rel or is_temporary(rel):  # a leftover of an interrupted write is not the store's content
                    continue
                dest = _target(staging, rel)
                dest.parent.mkdir(parents=True, exist_ok=True)
                # "xb" fails on a name written before (e.g. two names folding to one on this filesystem).
                with zf.open(info) as fin, dest.open("xb") as fout:
                    shutil.copyfileobj(fin, fout, _COPY_BLOCK)  # zipfile checks the CRC at each member's end
        open_store(staging).validate()
        if verify:
            report = verify_store(staging)
            if not report.ok:
                raise StoreError(f"{zp}: the unpacked store fails verification: {'; '.join(report.problems)}")
        staging.chmod(0o755)  # mkdtemp made it private; a store should read like any directory
        if out.exists():
            out.rmdir()  # empty, checked above; renaming onto a directory is not portable
        os.replace(staging, out)
    except zipfile.BadZipFile as e:
        shutil.rmtree(staging, ignore_errors=True)
        raise StoreError(f"{zp} is damaged: {e}") from e
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out
