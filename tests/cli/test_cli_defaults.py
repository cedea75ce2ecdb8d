"""Each option default is declared once, in the config dataclass; the CLI reads it from there."""

from __future__ import annotations

import dataclasses

import typer

from topo.cli.app import app
from topo.pipeline.build_config import BuildConfig
from topo.trainer.config import TrainConfig


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


# The CLI runs all three stages unless told otherwise; a TrainConfig is one stage. Lists are comma-separated text.
TRAIN_CLI_ONLY = {"stage"}


def test_train_defaults_are_the_train_configs():
    options = _options("train")
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    shared = [n for n in options if n in fields and n not in TRAIN_CLI_ONLY]
    shared = [n for n in shared if _default(fields[n]) is not dataclasses.MISSING]  # store: found in the workspace
    assert len(shared) >= 25
    for name in shared:
        default = _default(fields[name])
        if isinstance(default, tuple):
            default = ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in default)
        assert options[name] == default, name
