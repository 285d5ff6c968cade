"""Each option is written once, as a row of ``_options.OPTIONS``: the dataclass's fields and defaults,
the report header and the arguments of the verification re-run all come from that row."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from pytest_scriptum._options import CLEAR, OPTIONS, ScriptumConfig, rerun_args

OVERRIDES = {spec.name: None for spec in OPTIONS if spec.rerun == "override"}


def test_the_config_has_one_field_per_row_with_the_rows_default() -> None:
    fields = {field.name: field for field in dataclasses.fields(ScriptumConfig)}
    assert set(fields) == {spec.name for spec in OPTIONS} | {"token", "sources"}
    defaults = ScriptumConfig()
    for spec in OPTIONS:
        assert getattr(defaults, spec.name) == spec.default, spec.name


def test_the_header_shows_every_row_marked_for_it_and_where_it_came_from() -> None:
    cfg = ScriptumConfig(
        version=4, script="calc", require_env=("A", "B"), sources={"version": "env SCRIPTUM_VERSION"}
    )
    (line,) = cfg.header_lines()
    assert line.startswith("scriptum: version=4 (env SCRIPTUM_VERSION), script=calc (default)")
    assert "require_env=A,B (default)" in line
    for spec in OPTIONS:
        shown = f"{spec.name}=" in line
        assert shown == (spec.header and getattr(cfg, spec.name) not in (None, ())), spec.name
    assert line.endswith("token=$DODIL_TOKEN (not set)")


def test_a_rerun_forwards_every_forwarded_row_that_has_a_value() -> None:
    cfg = ScriptumConfig(
        script="calc",
        transport="http",
        timeout=5.0,
        retries=0,
        concurrency=3,
        min_pass_rate=0.5,
        min_tests=2,
        max_errors=1,
        require_env=("A", "B"),
        incident="INC-1",
        no_env=True,
        insecure=True,
        fail_fast=True,
        seed=Path("/seed"),
    )
    args = rerun_args(cfg, OVERRIDES)
    assert args == [
        "--scriptum-script",
        "calc",
        "--scriptum-transport",
        "http",
        "--scriptum-min-pass-rate",
        "0.5",
        "--scriptum-min-tests",
        "2",
        "--scriptum-max-errors",
        "1",
        "--scriptum-require-env",
        "A,B",
        "--scriptum-incident",
        "INC-1",
        "--scriptum-concurrency",
        "3",
        "--scriptum-timeout",
        "5.0",
        "--scriptum-retries",
        "0",
        "--scriptum-no-env",
        "--scriptum-insecure",
    ]  # fail_fast and seed are omitted: the re-run reads them from its ini file like the parent


def test_overrides_set_clear_or_leave_out_what_the_rerun_decides() -> None:
    overrides = {
        **OVERRIDES,
        "version": 3,
        "verification_of": 4,
        "rollback": "off",
        "rollback_to": CLEAR,
        "token_env": "CHILD_TOKEN",
        "evidence": Path("/e/v.json"),
    }
    args = rerun_args(ScriptumConfig(), overrides)
    assert args[:2] == ["--scriptum-version", "3"]
    assert ["--scriptum-rollback", "off"] == args[args.index("--scriptum-rollback") :][:2]
    assert ["-o", "scriptum_rollback_to="] == args[args.index("-o") :][:2]
    assert ["-o", "scriptum_token_env=CHILD_TOKEN"] == args[-4:-2]  # no CLI flag: the ini key
    assert args[-2:] == ["--scriptum-verification-of", "4"]
    assert "--scriptum-endpoint" not in args  # None: left unset


def test_every_row_the_rerun_decides_must_be_given() -> None:
    missing = dict(OVERRIDES)
    missing.pop("evidence")
    with pytest.raises(ValueError, match="re-run overrides must be exactly"):
        rerun_args(ScriptumConfig(), missing)
    with pytest.raises(ValueError, match="re-run overrides must be exactly"):
        rerun_args(ScriptumConfig(), {**OVERRIDES, "script": "calc"})  # forwarded, not overridden
