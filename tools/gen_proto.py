"""Regenerate the checked-in Python code for protos/dodil/scriptum/v1/scriptum.proto.

    python tools/gen_proto.py            # rewrite pytest_scriptum/_proto/
    python tools/gen_proto.py --check    # exit 1 if the checked-in code is stale

protoc writes absolute imports (``from dodil.scriptum.v1 import scriptum_pb2``); they are
rewritten to point inside the package so the generated code needs no sys.path tricks.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "protos"
PROTO = "dodil/scriptum/v1/scriptum.proto"
OUT_DIR = ROOT / "pytest_scriptum" / "_proto"
FILES = ("scriptum_pb2.py", "scriptum_pb2.pyi", "scriptum_pb2_grpc.py", "scriptum_pb2_grpc.pyi")


def generate() -> dict[str, str]:
    """Run protoc into a temporary directory and return {file name: text}."""
    import grpc_tools
    from google.api import annotations_pb2  # googleapis-common-protos ships google/api/*.proto
    from grpc_tools import protoc

    include = str(Path(grpc_tools.__file__).parent / "_proto")
    googleapis = str(Path(annotations_pb2.__file__).resolve().parents[2])
    # protoc finds protoc-gen-mypy on PATH; it lives next to this interpreter.
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            "protoc",
            f"-I{PROTO_DIR}",
            f"-I{include}",
            f"-I{googleapis}",
            f"--python_out={tmp}",
            f"--grpc_python_out={tmp}",
            f"--mypy_out={tmp}",
            f"--mypy_grpc_out={tmp}",
            PROTO,
        ]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed")
        gen = Path(tmp) / "dodil" / "scriptum" / "v1"
        out = {}
        for name in FILES:
            text = (gen / name).read_text()
            text = text.replace("from dodil.scriptum.v1 import", "from pytest_scriptum._proto import")
            text = text.replace(
                "import dodil.scriptum.v1.scriptum_pb2", "import pytest_scriptum._proto.scriptum_pb2"
            )
            text = text.replace("dodil.scriptum.v1.scriptum_pb2.", "pytest_scriptum._proto.scriptum_pb2.")
            out[name] = text
        return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report whether the code is current")
    args = parser.parse_args()
    fresh = generate()
    stale = [n for n, t in fresh.items() if not (OUT_DIR / n).exists() or (OUT_DIR / n).read_text() != t]
    if args.check:
        for name in stale:
            print(f"stale: pytest_scriptum/_proto/{name} (run: python tools/gen_proto.py)")
        return 1 if stale else 0
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for name, text in fresh.items():
        (OUT_DIR / name).write_text(text)
    print(f"wrote {len(fresh)} files to {OUT_DIR.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
