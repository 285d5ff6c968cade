"""Expensive, read-only test inputs built once per test run and shared by every xdist worker.

A module-scoped fixture is built once per *worker*: under ``-n 2`` with the default ``--dist
load`` the tests of one module land on both workers, so a fixture that runs real pytest sessions
(e.g. the shard bundles of ``tests/shard/test_shard_set.py``) ran twice. ``once_per_run`` builds
it in the run's shared base temp directory under an exclusive lock instead: the first worker to
ask builds, the others wait and read. Only for inputs the tests never modify (they copy what they
change), so sharing cannot make tests order-dependent.

The pattern is pytest-xdist's own recipe ("Making session-scoped fixtures execute only once");
``fcntl.flock`` stands in for the ``filelock`` package, which the test extra does not install.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

__all__ = ["once_per_run"]


def once_per_run(factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]) -> Path:
    """The directory ``build`` filled, built once for this whole test run.

    ``name`` names the directory (one per kind of input); ``build(directory)`` gets an empty
    directory and writes its results there. Outside xdist it simply builds in a fresh temp dir.
    Under xdist the directory is ``<run basetemp>/<name>`` (the parent of the workers' own
    ``popen-gwN`` basetemps: a fresh one per run, so nothing carries over between runs). A build
    that raises leaves no marker: the next worker to ask builds again (and fails the same way,
    reporting its own error).
    """
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        target = factory.mktemp(name)
        build(target)
        return target
    root = factory.getbasetemp().parent
    target = root / name
    built = root / f"{name}.built"
    with open(root / f"{name}.lock", "w", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not built.exists():
            shutil.rmtree(target, ignore_errors=True)  # a build that raised half-way
            target.mkdir()
            build(target)
            built.touch()
    return target
