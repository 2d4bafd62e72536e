"""The committed protobuf stubs are what the pinned grpcio-tools generates from proto/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_committed_stubs_match_a_fresh_generation(tmp_path: Path) -> None:
    """Regenerating the Python stubs from proto/ must not change anything."""
    proc = subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{ROOT / 'proto'}",
         f"--python_out={tmp_path}", f"--pyi_out={tmp_path}", f"--grpc_python_out={tmp_path}",
         str(ROOT / "proto" / "imgbench" / "v1" / "imgbench.proto")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    generated = sorted(p.name for p in (tmp_path / "imgbench" / "v1").iterdir())
    assert generated == ["imgbench_pb2.py", "imgbench_pb2.pyi", "imgbench_pb2_grpc.py"]
    for name in generated:
        committed = (ROOT / "imgbench" / "v1" / name).read_text()
        fresh = (tmp_path / "imgbench" / "v1" / name).read_text()
        assert committed == fresh, (
            f"imgbench/v1/{name} is stale: run python -m grpc_tools.protoc -Iproto"
            " --python_out=. --pyi_out=. --grpc_python_out=. proto/imgbench/v1/imgbench.proto"
        )
