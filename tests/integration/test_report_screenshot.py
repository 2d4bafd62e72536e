"""report.html in a real browser: the headline is above the fold at 1280x800.

Headless Chromium (Debian ``chromium``) screenshots the page; the test paints
the headline box a marker colour through an extra style rule (the page itself
is unchanged otherwise) and finds that colour's pixel rows in the screenshot.
The whole box must lie inside the 800-pixel viewport. A control page with the
headline pushed below the fold must show no marker rows, so the check can fail.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from PIL import Image

from imgbench.report import write_outputs

from helpers.external_tools import INSTALL_HINTS, require_tool
from helpers.synthetic import comparison

INSTALL_HINTS.setdefault("chromium", "apt-get install chromium")
WIDTH, HEIGHT = 1280, 800
MARKER = (255, 0, 255)
MARK_HEADLINE = "<style>#headline{background:#ff00ff !important}</style></head>"


def _screenshot(chromium: str, page: Path, out: Path, profile: Path) -> Image.Image:
    proc = subprocess.run(
        [
            chromium, "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", f"--user-data-dir={profile}", "--hide-scrollbars",
            f"--screenshot={out}", f"--window-size={WIDTH},{HEIGHT}", page.as_uri(),
        ],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0 and out.is_file(), proc.stderr[-2000:]
    return Image.open(out).convert("RGB")


def _marker_rows(image: Image.Image) -> list[int]:
    width, height = image.size
    pixels = image.load()
    assert pixels is not None
    rows = []
    for y in range(height):
        # The box spans most of the width: count marker pixels in the row.
        hits = sum(1 for x in range(0, width, 4) if pixels[x, y] == MARKER)
        if hits * 4 > width // 3:
            rows.append(y)
    return rows


@pytest.fixture(scope="module")
def chromium() -> str:
    return require_tool("chromium")


def test_headline_is_above_the_fold(chromium: str, tmp_path: Path) -> None:
    c = comparison({"websocket/binary": [1.0], "grpc/unary": [2.0]}, images=20)
    write_outputs(c, tmp_path / "run")
    html = (tmp_path / "run" / "report.html").read_text()
    assert html.index('id="headline"') < html.index('id="compact"') < html.index("<h2>Plots")
    marked = tmp_path / "marked.html"
    marked.write_text(html.replace("</head>", MARK_HEADLINE, 1))
    shot = _screenshot(chromium, marked, tmp_path / "shot.png", tmp_path / "profile")
    assert shot.size == (WIDTH, HEIGHT)
    rows = _marker_rows(shot)
    assert rows, "headline box not visible in the first 800 pixels"
    # The whole box is inside the viewport, with page (not marker) below it.
    assert rows[-1] < HEIGHT - 1
    assert rows[-1] - rows[0] > 40  # a box, not a stray line

    # Control: the same page with 2000 px above the headline shows no marker.
    pushed = tmp_path / "pushed.html"
    spacer = '<div style="height:2000px"></div><section id="headline">'
    pushed.write_text(marked.read_text().replace('<section id="headline">', spacer, 1))
    control = _screenshot(chromium, pushed, tmp_path / "control.png", tmp_path / "profile2")
    assert _marker_rows(control) == []
