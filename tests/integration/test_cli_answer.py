"""The answer as a user or a CI job gets it: real compare runs, stdout as printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from jsonschema import Draft202012Validator

from imgbench.cli import EXIT_THRESHOLD

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "schemas" / "compare.schema.json").read_text())


def imgbench(*args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    # Piped (not a terminal) and 80 columns: how CI and `| less` see it.
    return subprocess.run(
        [sys.executable, "-m", "imgbench.cli", *args, "--output", str(tmp)],
        capture_output=True, text=True, timeout=180, check=False,
        env={**os.environ, "COLUMNS": "80"},
    )  # fmt: skip


def test_one_image_prints_no_interval_and_says_why(tmp_path: Path) -> None:
    proc = imgbench("compare", "--images", "1", "--delay", "0", tmp=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "too few samples for a verdict (n=1 and n=1; at least 10 per group)" in " ".join(
        out.split()
    )
    assert "CI" not in out and "faster" not in out and "slower" not in out
    # The answer comes first, and every line fits 80 columns.
    assert out.index("too few samples") < out.index("transmission median (ms)")
    assert max(len(line) for line in out.splitlines()) <= 80


def test_json_is_one_document_with_a_verdict_per_pair_valid_against_the_schema(
    tmp_path: Path,
) -> None:
    proc = imgbench("compare", "--images", "10", "--delay", "0", "--format", "json", tmp=tmp_path)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)  # the whole of stdout is one JSON document
    Draft202012Validator.check_schema(SCHEMA)
    errors = list(
        Draft202012Validator(
            SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER
        ).iter_errors(doc)
    )
    assert errors == []
    (verdict,) = doc["verdicts"]
    assert {verdict["a"], verdict["b"]} == {"websocket/binary", "grpc/unary"}
    assert verdict["n"] == {"websocket/binary": 10, "grpc/unary": 10}
    assert verdict["outcome"] != "too few samples"
    assert verdict["ci_low"] <= verdict["ci_high"]
    assert set(doc["figures"]) == {"websocket/binary", "grpc/unary"}
    for f in doc["files"]:
        assert Path(f).is_file()
    results = json.loads(Path(doc["files"][0]).read_text())
    assert results["verdicts"] == doc["verdicts"]
    # Something the schema must refuse, so the validation above can fail.
    broken = {**doc, "verdicts": [{**verdict, "outcome": "quicker"}]}
    assert list(Draft202012Validator(SCHEMA).iter_errors(broken))


def test_a_failed_threshold_exits_99_and_names_it(tmp_path: Path) -> None:
    failing = "websocket/binary:p50<1us"
    proc = imgbench("compare", "--images", "5", "--delay", "0", "--threshold", failing,
                    tmp=tmp_path)  # fmt: skip
    assert proc.returncode == EXIT_THRESHOLD == 99, proc.stderr
    assert f"✗ FAIL  {failing}  p50=" in proc.stdout
    assert f"threshold failed: {failing}" in proc.stderr
    holding = "websocket/binary:p50<60s"
    proc = imgbench("compare", "--images", "5", "--delay", "0", "--threshold", holding,
                    tmp=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert f"✓ pass  {holding}  p50=" in proc.stdout


def test_a_bad_threshold_exits_2_naming_the_setting_before_any_run(tmp_path: Path) -> None:
    proc = imgbench("compare", "--threshold", "websocket:p95<1ms", tmp=tmp_path)
    assert proc.returncode == 2
    assert "IMGBENCH_THRESHOLDS (--threshold)" in proc.stderr and "p95" in proc.stderr
    assert not any(tmp_path.iterdir())


def test_help_shows_allowed_values_and_real_defaults() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "imgbench.cli", "compare", "--help"],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert proc.returncode == 0
    text = proc.stdout
    assert "--format {text,json}" in text and "--ws-mode {binary,json}" in text
    assert "--log-level {debug,info,warning,error}" in text
    assert "--images IMAGES " in text and "--images IMGBENCH_IMAGES" not in text
    assert "default 10]" in text  # the Option table's default
    # compare starts its own receiver: the port defaults only apply with an external one.
    assert "default 8765 with --external-receiver" in text
