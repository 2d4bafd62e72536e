"""The README's Layout table names every module of the tree, in its folder's row."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: Folders whose modules the table lists one by one, each in the row of that folder
#: (the test helpers in the row of tests/).
FOLDERS = {"imgbench/wire": "imgbench/wire", "imgbench/measure": "imgbench/measure",
           "imgbench/config": "imgbench/config", "imgbench/observe": "imgbench/observe",
           "imgbench/report": "imgbench/report", "imgbench/runtime": "imgbench/runtime",
           "imgbench/lab": "imgbench/lab", "receiver": "receiver", "transmitter": "transmitter",
           "benchmarks": "benchmarks", "grafana/panels": "grafana/panels",
           "tests/helpers": "tests"}  # fmt: skip


def _layout_rows() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("| `")]


def _row_of(folder: str, rows: list[str]) -> str:
    """The row whose first cell names ``folder/`` (a folder may share its row)."""
    mine = [row for row in rows if f"`{folder}/`" in row.split(" | ")[0]]
    assert len(mine) == 1, f"README Layout: no row (or several) for {folder}/"
    return mine[0]


def test_every_module_is_named_in_its_folders_row() -> None:
    rows = _layout_rows()
    missing = []
    for folder, row_folder in FOLDERS.items():
        row = _row_of(row_folder, rows)
        stems = sorted(p.stem for p in (ROOT / folder).glob("*.py"))
        assert stems, folder
        named = set(re.findall(r"`([a-z_]+)`", row))
        missing += [f"{folder}/{s}.py" for s in stems if s not in {"__init__", "__main__"}
                    and s not in named]  # fmt: skip
    assert missing == []


def test_every_shared_top_level_module_is_named() -> None:
    section = "\n".join(_layout_rows())
    modules = sorted(p.name for p in (ROOT / "imgbench").glob("*.py") if p.stem != "__init__")
    assert modules
    assert [m for m in modules if f"`imgbench/{m}`" not in section] == []
