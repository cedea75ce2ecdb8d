"""``topo store verify``: the contract check, then every chunk re-read against its recorded checksum."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from topo.store_schema.errors import StoreError
from topo.store_schema.integrity import block_digest
from topo.store_schema.layout import StoreFiles
from topo.store_schema.location import Location
from topo.store_schema.store import open_store


@dataclass
class VerifyReport:
    """Problems found (empty when the store is valid) and how many chunk checksums were compared."""

    problems: list[str] = field(default_factory=list)
    chunks_checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def summary(self) -> str:
        return f"valid; {self.chunks_checked} chunk checksums match"


def verify_store(where: str | os.PathLike[str] | Location) -> VerifyReport:
    """Validate the layout and re-read every chunk of every array, comparing content checksums."""
    store = open_store(where)
    report = VerifyReport(problems=store.problems())
    if report.problems:
        return report
    try:
        sums = store.read_table(StoreFiles.CHECKSUMS).to_pylist()
    except StoreError as e:
        report.problems.append(str(e))
        return report
    arrays = {}
    for row in sums:
        name = row["array"]
        if name not in arrays:
            arrays[name] = store.array(name)
        try:
            block = arrays[name][row["start"] : row["stop"]]
        except Exception as e:  # a truncated or undecodable chunk file
            report.problems.append(
                f"array '{name}' chunk {row['chunk']} (samples {row['start']}–{row['stop'] - 1}) cannot be read: {e}"
            )
            continue
        if block_digest(block) != row["sha256"]:
            report.problems.append(
                f"array '{name}' chunk {row['chunk']} (samples {row['start']}–{row['stop'] - 1}) "
                "does not match its checksum: altered or missing"
            )
        report.chunks_checked += 1
    return report
