"""Each option default is declared once, in the config dataclass; the CLI reads it from there."""

from __future__ import annotations

import dataclasses

import typer

from topo.cli.app import app
from topo.pipeline.build_config import BuildConfig


def _options(command: str) -> dict:
    click_cmd = typer.main.get_command(app).commands[command]
    return {p.name: p.default for p in click_cmd.params}


def _default(f: dataclasses.Field):
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


# None on the command line means "leave the config's default": the codec is the store layout's choice.
UNSET_MEANS_DEFAULT = {"image_codec"}


def test_build_store_defaults_are_the_build_configs():
    options = _options("build-store")
    fields = {f.name: f for f in dataclasses.fields(BuildConfig)}
    shared = [n for n in options if n in fields and _default(fields[n]) is not dataclasses.MISSING]
    assert len(shared) >= 10  # size, download, roi, image_size, chunk_size, split_seed, limit, max_chunks, strict, …
    for name in shared:
        expected = None if name in UNSET_MEANS_DEFAULT else _default(fields[name])
        assert options[name] == expected, name
    filtration = _default(fields["filtration"])
    assert options["full_diagrams"] == filtration.full_diagrams
    assert options["superlevel"] == (filtration.direction == "superlevel")
