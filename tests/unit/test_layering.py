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
        "imgbench/report/markdown.py", "imgbench/errors.py", "imgbench/images.py",
        "imgbench/security/token.py")  # fmt: skip
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


#: The receiver's sans-I/O step, the values it takes and gives, and the run table it
#: keeps: no I/O, no telemetry.
SANS_IO = ("receiver/step.py", "receiver/events.py", "receiver/runs.py")
NO_IO_OR_TELEMETRY = {"asyncio", "socket", "ssl", "selectors", "subprocess", "grpc",
                      "websockets", "prometheus_client", "opentelemetry", "structlog",
                      "imgbench.observe", "imgbench.runtime", "receiver.core", "receiver.ws",
                      "receiver.grpc_server", "receiver.push", "receiver.server"}  # fmt: skip


def _forbidden(name: str) -> bool:
    return any(name == m or name.startswith(m + ".") for m in NO_IO_OR_TELEMETRY)


def test_the_receiver_step_imports_no_io_or_telemetry() -> None:
    """Directly: no import statement (TYPE_CHECKING-only imports excepted) names one."""
    offenders = []
    for entry in SANS_IO:
        path = ROOT / entry
        tree = ast.parse(path.read_text(), str(path))
        typing_only = {
            id(n)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
            for n in ast.walk(node)
        }
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{entry}: {n}" for n in names if _forbidden(n)]
    assert offenders == []


def test_importing_the_receiver_step_loads_no_io_or_telemetry_module() -> None:
    """Transitively: a fresh interpreter importing the step has loaded none of them."""
    import subprocess
    import sys

    for module in ("receiver.events", "receiver.step"):
        code = f"import sys, {module}; print('\\n'.join(sorted(sys.modules)))"
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.split()
        assert module in out
        assert [m for m in out if _forbidden(m)] == [], module
