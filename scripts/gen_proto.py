"""Generate Python, gRPC and mypy stubs for every .proto under proto/.

The proto tree mirrors the Python package (proto/cqtraffic/query/v1/*.proto ->
cqtraffic.query.v1.*_pb2), so generated imports resolve without rewriting.
Output goes to libs/contracts/src and is never edited by hand.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO = ROOT / "proto"
OUT = ROOT / "libs" / "contracts" / "src"
# mypy-protobuf's plugins live beside the interpreter running this script.
BIN = Path(sys.executable).parent


def main() -> int:
    top = OUT / "cqtraffic"
    for child in top.iterdir():
        if child.is_dir():
            shutil.rmtree(child)
    files = sorted(str(p.relative_to(PROTO)) for p in PROTO.rglob("*.proto"))
    if not files:
        print("no .proto files under proto/", file=sys.stderr)
        return 1
    include = str(Path(protoc.__file__).parent / "_proto")
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO}",
        f"-I{include}",
        f"--python_out={OUT}",
        f"--grpc_python_out={OUT}",
        f"--plugin=protoc-gen-mypy={BIN / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={BIN / 'protoc-gen-mypy_grpc'}",
        f"--mypy_out={OUT}",
        f"--mypy_grpc_out={OUT}",
        *files,
    ]
    code = protoc.main(args)
    if code != 0:
        return int(code)
    for directory in top.rglob("*"):
        if directory.is_dir() and not (directory / "__init__.py").exists():
            (directory / "__init__.py").write_text('"""Generated package."""\n')
    print(f"generated stubs for {len(files)} proto files into {top.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
