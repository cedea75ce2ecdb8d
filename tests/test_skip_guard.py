"""The skip guard (tests/fixtures/skip_guard.py): a skip fails the run unless it is a ``gpu`` test without CUDA."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

TESTS = Path(__file__).resolve().parent

CONFTEST = f"""
import sys
sys.path.insert(0, {str(TESTS)!r})
from fixtures import skip_guard

def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs a CUDA device")
    skip_guard.install(config)
"""


def _run(pytester: pytest.Pytester, body: str, *args: str) -> pytest.RunResult:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_sample=body)
    return pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider", *args)


def test_a_plain_skip_fails_the_run(pytester: pytest.Pytester, monkeypatch) -> None:
    monkeypatch.delenv("TOPO_ALLOW_SKIPS", raising=False)
    res = _run(pytester, "import pytest\ndef test_a():\n    pytest.skip('no data here')\ndef test_b():\n    pass\n")
    assert res.ret == pytest.ExitCode.TESTS_FAILED
    res.stdout.fnmatch_lines(["*skips refused*", "*test_sample.py::test_a: no data here*"])


def test_a_module_skipped_at_collection_fails_the_run(pytester: pytest.Pytester, monkeypatch) -> None:
    monkeypatch.delenv("TOPO_ALLOW_SKIPS", raising=False)
    res = _run(pytester, "import pytest\nnot_there = pytest.importorskip('a_module_that_is_not_there')\n")
    assert res.ret == pytest.ExitCode.TESTS_FAILED
    res.stdout.fnmatch_lines(["*whole module at collection*"])


def test_a_gpu_test_may_skip_only_without_cuda(pytester: pytest.Pytester, monkeypatch) -> None:
    import torch

    monkeypatch.delenv("TOPO_ALLOW_SKIPS", raising=False)
    body = "import pytest\n@pytest.mark.gpu\ndef test_a():\n    pytest.skip('no CUDA device')\n"
    res = _run(pytester, body)
    expected = pytest.ExitCode.TESTS_FAILED if torch.cuda.is_available() else pytest.ExitCode.OK
    assert res.ret == expected


def test_xfail_is_not_a_skip_and_the_override_allows_skips(pytester: pytest.Pytester, monkeypatch) -> None:
    monkeypatch.delenv("TOPO_ALLOW_SKIPS", raising=False)
    res = _run(pytester, "import pytest\n@pytest.mark.xfail(strict=True)\ndef test_a():\n    assert False\n")
    assert res.ret == pytest.ExitCode.OK
    monkeypatch.setenv("TOPO_ALLOW_SKIPS", "1")
    res = _run(pytester, "import pytest\ndef test_a():\n    pytest.skip('local run')\n")
    assert res.ret == pytest.ExitCode.OK


@pytest.mark.parametrize(
    "body",
    [
        "import pytest\ndef test_a():\n    pytest.skip('no data here')\ndef test_b():\n    pass\n",
        "import pytest\nnot_there = pytest.importorskip('a_module_that_is_not_there')\n",
    ],
    ids=["skip-in-a-test", "skip-at-collection"],
)
def test_the_guard_holds_with_two_xdist_workers(pytester: pytest.Pytester, monkeypatch, body: str) -> None:
    """``make test`` runs two pytest-xdist workers: their skips reach the controller, which fails the run."""
    monkeypatch.delenv("TOPO_ALLOW_SKIPS", raising=False)
    res = _run(pytester, body, "-n", "2")
    assert res.ret == pytest.ExitCode.TESTS_FAILED
    res.stdout.fnmatch_lines(["*skips refused*"])
