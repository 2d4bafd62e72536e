"""Project invariants: the shared core never imports the services; pure packages do no I/O."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_shared_core_never_imports_the_services() -> None:
    """Only imgbench.cli (the composition root) may import receiver or transmitter."""
    offenders = []
    for path in sorted((ROOT / "imgbench").rglob("*.py")):
        if path.name == "cli.py" and path.parent == ROOT / "imgbench":
            continue
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                if name.split(".")[0] in ("receiver", "transmitter"):
                    offenders.append(f"{path.relative_to(ROOT)}: {name}")
    assert offenders == []


#: Packages (and modules) that must stay free of network and event-loop I/O.
PURE = ("imgbench/wire", "imgbench/measure", "imgbench/config", "imgbench/report/model.py",
        "imgbench/report/markdown.py", "imgbench/errors.py", "imgbench/images.py")  # fmt: skip
IO_MODULES = {"asyncio", "socket", "ssl", "selectors", "subprocess", "grpc", "websockets",
              "http", "urllib", "aiohttp", "httpx"}  # fmt: skip


def test_pure_packages_import_no_socket_or_event_loop_io() -> None:
    offenders = []
    for entry in PURE:
        target = ROOT / entry
        paths = sorted(target.rglob("*.py")) if target.is_dir() else [target]
        assert paths, entry
        for path in paths:
            tree = ast.parse(path.read_text(), str(path))
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                offenders += [
                    f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] in IO_MODULES
                ]
    assert offenders == []
