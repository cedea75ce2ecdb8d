"""Every command the CLI tells a person to run is a real command: pasted as printed, it is accepted.

(a) The calibration hint, taken from the messages themselves (``store info``, ``train``'s errors), is run through
the CLI and succeeds: on a store under a folder with a space in its name (the quoting matters), first the plain
calibration, then the whole-image one, which must carry ``--overwrite`` since the store is calibrated by then.
(b) Every backticked ``topo …`` command in the sources of the messages names an existing (sub)command, and each
of its options is one that command accepts (its ``--help`` runs too).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
from pathlib import Path
from typing import Any

import pytest
import typer
from fixtures.consoles import use_console_width
from typer.testing import CliRunner

import topo.cli.app as app_mod
from topo.store_schema import open_store
from topo.store_schema.calibration import calibrate_hint

REPO = Path(__file__).resolve().parents[2]
MESSAGE_SOURCES = ("cli", "pipeline", "store_schema", "trainer")
COMMAND = re.compile(r"(?<!`)`(topo [^`\n]+)`(?!`)")  # single backticks: a message, not a ``docstring`` literal
HINT = re.compile(r"`(topo calibrate-aug [^`]+)`")


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    """Wide enough that no message is wrapped: a hint is read back exactly as a person would copy it."""
    use_console_width(monkeypatch, 2000)


def _run(args: list[str]):
    return CliRunner().invoke(app_mod.app, args)


def _hint(output: str) -> str:
    found = HINT.findall(" ".join(output.split()))
    assert found, output
    return found[0]


def _paste(hint: str):
    """Run a hint as the shell would split it (so its quoting is tested), through the CLI."""
    words = shlex.split(hint)
    assert words[0] == "topo"
    return _run(words[1:])


@pytest.mark.slow
def test_the_calibration_hint_runs_as_pasted(ray_session, small_store, tmp_path: Path) -> None:
    store = tmp_path / "my stores" / "demo copy.zarr"
    shutil.copytree(small_store, store)
    ws = tmp_path / "ws"
    r = _run(["store", "info", "--store", str(store)])
    assert r.exit_code == 0, r.output
    hint = _hint(r.output)
    assert hint == calibrate_hint(store).strip("`") and "--overwrite" not in hint
    train = ["train", "--store", str(store), "--backbone", "resnet18", "--device", "cpu", "--workspace", str(ws)]
    r = _run([*train, "--stage", "topo", "--max-steps", "1"])
    assert r.exit_code == 2 and "has no calibration" in r.output, r.output
    assert _hint(r.output) == hint
    r = _paste(hint)
    assert r.exit_code == 0, r.output
    assert open_store(store).attrs["calibration"]["ranges"]
    # Calibrated on the ROI: whole-image views need another calibration, which must replace this one.
    r = _run([*train, "--stage", "topo", "--max-steps", "1", "--topo-views", "full_image"])
    assert r.exit_code == 2, r.output
    again = _hint(r.output)
    assert "--full-image" in again and again.endswith("--overwrite"), again
    assert _paste(again.removesuffix(" --overwrite")).exit_code != 0  # without it the command refuses: it is needed
    r = _paste(again)
    assert r.exit_code == 0, r.output
    assert open_store(store).attrs["calibration"]["full_image"] is True


def _commands_in_sources() -> list[tuple[str, str]]:
    found = []
    for pkg in MESSAGE_SOURCES:
        for path in sorted((REPO / pkg).rglob("*.py")):
            for cmd in COMMAND.findall(path.read_text()):
                found.append((f"{path.relative_to(REPO)}", cmd))
    return found


def _is_group(cmd: Any) -> bool:
    return hasattr(cmd, "commands")  # typer's groups (it ships its own click): a command with sub-commands


def _resolve(group: Any, words: list[str]) -> tuple[Any, list[str], list[str]]:
    """The (sub)command the words name, its path, and the words left (options and values)."""
    path: list[str] = []
    cmd = group
    while words and _is_group(cmd) and not words[0].startswith("-"):
        sub = cmd.commands.get(words[0])
        assert sub is not None, f"`topo {' '.join(path + words)}`: no command {words[0]!r}"
        cmd, path, words = sub, [*path, words[0]], words[1:]
    return cmd, path, words


def test_the_scan_finds_the_hints() -> None:
    """A scan that found nothing would pass vacuously."""
    cmds = {c for _, c in _commands_in_sources()}
    assert any(c.startswith("topo build-store") for c in cmds) and any(c.startswith("topo store ") for c in cmds)
    assert len(cmds) >= 5


@pytest.mark.parametrize(("where", "command"), _commands_in_sources())
def test_every_backticked_command_in_the_messages_exists(where: str, command: str) -> None:
    root = typer.main.get_command(app_mod.app)
    cmd, path, rest = _resolve(root, command.split()[1:])
    assert not _is_group(cmd), f"{where}: `{command}` names a group, not a command"
    options = {o: p for p in cmd.params if p.param_type_name == "option" for o in (*p.opts, *p.secondary_opts)}
    arguments = [p for p in cmd.params if p.param_type_name == "argument"]
    positional, words = 0, iter(rest)
    for word in words:
        if not word.startswith("-"):
            positional += 1
            continue
        option = word.split("=", 1)[0]
        assert option in options, f"{where}: `{command}`: {cmd.name} has no option {option}"
        if not options[option].is_flag and "=" not in word:
            next(words, None)  # the option's value (a placeholder such as N or {dataset})
    most = float("inf") if any(a.nargs == -1 for a in arguments) else len(arguments)
    assert positional <= most, f"{where}: `{command}`: {cmd.name} takes {most} argument(s), the hint gives {positional}"
    r = _run([*path, "--help"])
    assert r.exit_code == 0, r.output


def test_the_hint_asks_for_overwrite_only_on_a_calibrated_store(small_store, calibrated_store) -> None:
    plain = shlex.split(calibrate_hint(small_store).strip("`"))
    assert plain == ["topo", "calibrate-aug", "--store", os.path.abspath(small_store)]
    wider = shlex.split(calibrate_hint(calibrated_store, grid=16).strip("`"))
    assert wider[-1] == "--overwrite" and wider[wider.index("--grid") + 1] == "16"
