"""The generated protobuf/gRPC code checked in under pytest_scriptum/_proto is what protoc makes of
protos/ today (regenerate with `python tools/gen_proto.py`)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from kit.constants import REPO as ROOT


def _gen_proto():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("gen_proto", ROOT / "tools" / "gen_proto.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_checked_in_code_is_current() -> None:
    gen = _gen_proto()
    fresh = gen.generate()
    assert set(fresh) == set(gen.FILES)
    stale = [name for name, text in fresh.items() if (gen.OUT_DIR / name).read_text() != text]
    assert not stale, f"stale generated code {stale}: run python tools/gen_proto.py"


def test_stale_code_is_detected(tmp_path: Path) -> None:
    gen = _gen_proto()
    fresh = gen.generate()
    # What --check compares against: a changed proto makes different code.
    edited = tmp_path / "protos"
    (edited / "dodil" / "scriptum" / "v1").mkdir(parents=True)
    proto = (gen.PROTO_DIR / gen.PROTO).read_text()
    proto = proto.replace("// Step name / label.", "// Step name / label.\n  string extra = 99;", 1)
    (edited / gen.PROTO).write_text(proto)
    original = gen.PROTO_DIR
    gen.PROTO_DIR = edited
    try:
        changed = gen.generate()
    finally:
        gen.PROTO_DIR = original
    assert changed["scriptum_pb2.py"] != fresh["scriptum_pb2.py"]
    assert "from pytest_scriptum._proto import scriptum_pb2" in fresh["scriptum_pb2_grpc.py"]
    assert "from dodil." not in fresh["scriptum_pb2_grpc.py"]
