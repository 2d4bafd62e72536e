"""External tools for tests: skip when one is missing, fail when CI requires them.

Some checks need a binary that pip cannot install (Debian's ``prometheus`` and
``promtool``, ``docker-compose``) or an optional Python tool
(``check-jsonschema``). On a developer machine without them those tests skip
with a reason; CI sets ``IMGBENCH_REQUIRE_TOOLS=1`` so that a missing tool
fails the run instead of silently skipping the check.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

#: How to install each tool, for the skip/failure message.
INSTALL_HINTS: dict[str, str] = {
    "prometheus": "apt-get install prometheus",
    "promtool": "apt-get install prometheus",
    "docker-compose": "apt-get install docker-compose",
    "check-jsonschema": "pip install -e '.[test]'",
    "kubectl": "apt-get install kubectl (ships kustomize)",
    "checkov": "python3 -m venv .venv-checkov && .venv-checkov/bin/pip install checkov==3.3.30",
}


def tools_required() -> bool:
    """True when missing tools must fail the tests (``IMGBENCH_REQUIRE_TOOLS=1``)."""
    return os.environ.get("IMGBENCH_REQUIRE_TOOLS", "").strip().lower() in {"1", "true", "yes"}


def find_tool(name: str) -> str | None:
    """Path of executable ``name`` on PATH, or next to the running interpreter (a venv)."""
    found = shutil.which(name)
    if found:
        return found
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.is_file() and os.access(beside, os.X_OK) else None


def require_tool(name: str) -> str:
    """Path of executable ``name``; skip the test if it is missing (fail under CI)."""
    path = find_tool(name)
    if path is not None:
        return path
    hint = INSTALL_HINTS.get(name, f"install {name}")
    message = f"{name} not found on PATH ({hint})"
    if tools_required():
        pytest.fail(f"{message}; IMGBENCH_REQUIRE_TOOLS=1 requires it", pytrace=False)
    pytest.skip(message)
