"""Each option is written once, as a row of ``_options.OPTIONS``: the dataclass's fields and defaults,
the report header and the arguments of the verification re-run all come from that row."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from pytest_scriptum._options import CLEAR, OPTIONS, ScriptumConfig, rerun_options

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
    line = ", ".join(ln.removeprefix("scriptum:").strip() for ln in cfg.header_lines(verbose=True)[1:])
    assert line.startswith("version=4 (env SCRIPTUM_VERSION), script=calc (default)")
    assert "require_env=A,B (default)" in line
    for spec in OPTIONS:
        shown = f"{spec.name}=" in line
        assert shown == (spec.header and getattr(cfg, spec.name) not in (None, ())), spec.name
    assert line.endswith("token=$DODIL_TOKEN (not set)")


def test_a_rerun_gets_every_forwarded_row_as_the_text_its_parser_accepts() -> None:
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
        secret_env=("CONN",),
        incident="INC-1 --scriptum-transport grpc",
        no_env=True,
        insecure=True,
        fail_fast=True,
        seed=Path("/seed"),
        repeat=3,
    )
    options = rerun_options(cfg, OVERRIDES)
    forwarded = {name: value for name, value in options.items() if name not in OVERRIDES}
    assert forwarded == {
        "script": "calc",
        "transport": "http",
        "min_pass_rate": "0.5",
        "min_tests": "2",
        "max_errors": "1",
        "require_env": "A,B",
        "secret_env": "CONN",  # the re-run masks what its parent masked
        "incident": "INC-1 --scriptum-transport grpc",  # one value, whatever it reads like
        "concurrency": "3",
        "timeout": "5.0",
        "retries": "0",
        "repeat": "3",  # the verification re-run repeats every case as the gate did
        "no_env": "true",
        "insecure": "true",
    }  # fail_fast and seed are omitted: the re-run reads them from its ini file like the parent
    for spec in OPTIONS:
        if spec.name in forwarded:
            assert spec.parse(forwarded[spec.name]) == getattr(cfg, spec.name), spec.name


def test_overrides_set_or_unset_what_the_rerun_decides() -> None:
    overrides = {
        **OVERRIDES,
        "version": 3,
        "verification_of": 4,
        "rollback": "off",
        "rollback_to": CLEAR,
        "token_env": "CHILD_TOKEN",
        "evidence": Path("/e/v.json"),
    }
    options = rerun_options(ScriptumConfig(), overrides)
    assert (options["version"], options["verification_of"], options["rollback"]) == ("3", "4", "off")
    assert (options["token_env"], options["evidence"]) == ("CHILD_TOKEN", "/e/v.json")
    # Unset in the re-run, whatever its ini file or environment says.
    assert options["rollback_to"] is None and options["endpoint"] is None
    assert "fail_fast" not in options and "seed" not in options


def test_every_row_the_rerun_decides_must_be_given() -> None:
    missing = dict(OVERRIDES)
    missing.pop("evidence")
    with pytest.raises(ValueError, match="re-run overrides must be exactly"):
        rerun_options(ScriptumConfig(), missing)
    with pytest.raises(ValueError, match="re-run overrides must be exactly"):
        rerun_options(ScriptumConfig(), {**OVERRIDES, "script": "calc"})  # forwarded, not overridden
