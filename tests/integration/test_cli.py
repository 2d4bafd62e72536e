"""The ``imgbench`` command as a user runs it: real processes, real ports."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from imgbench.measure.results import Comparison, compute_figures
from imgbench.runtime.lifecycle import READY_FILE_ENV


def imgbench(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imgbench.cli", *args],
        capture_output=True, text=True, timeout=timeout, check=False,
        env={**os.environ, "COLUMNS": "120", **(env or {})},
    )  # fmt: skip


def test_compare_prints_both_protocols_and_writes_the_result(tmp_path: Path) -> None:
    proc = imgbench("compare", "--images", "3", "--delay", "0.2", "--output", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "websocket/binary" in proc.stdout and "grpc/unary" in proc.stdout
    # The answer first: the verdict (here: why there is none), then the compact table.
    assert proc.stdout.index("too few samples for a verdict (n=3") < proc.stdout.index(
        "total transfer (s)"
    )
    assert "cumulative transmission (ms)" in proc.stdout
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    comparison = Comparison.load(run_dir / "results.json")
    assert comparison.settings["images"] == 3
    assert comparison.versions["grpcio"] and comparison.versions["websockets"]
    assert [r.label for r in comparison.runs] == ["websocket/binary", "grpc/unary"]
    for run in comparison.runs:
        figures = compute_figures(run.samples)
        assert figures.images == 3
        assert figures.total_transfer_s >= 2 * 0.2
        # The terminal shows the same figure that the JSON holds.
        assert f"{figures.total_transfer_s:.3f}" in proc.stdout
        assert f"{figures.transmission.p50 * 1000:.3f}" in proc.stdout
        assert run.costs["receiver_cpu_s"] >= 0 and run.costs["transmitter_cpu_s"] > 0
    # The receiver ran as its own process and logged as JSON into the output.
    receiver_log = (run_dir / "receiver.log").read_text().splitlines()
    completed = [json.loads(x) for x in receiver_log if '"run completed"' in x]
    assert {c["protocol"] for c in completed} == {"websocket", "grpc"}


def test_bad_configuration_exits_2_naming_the_setting(tmp_path: Path) -> None:
    proc = imgbench("compare", "--images", "-3", "--output", str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "imgbench: invalid setting IMGBENCH_IMAGES (--images): must be within 1..1000000, got -3"
    ]
    proc = imgbench("compare", env={"IMGBENCH_DELAY": "soon"})
    assert proc.returncode == 2 and "IMGBENCH_DELAY" in proc.stderr


def test_unreachable_receiver_exits_1_with_one_line(tmp_path: Path) -> None:
    proc = imgbench(
        "compare", "--external-receiver", "--port", "1", "--grpc-port", "1", "--http-port", "1",
        "--connect-timeout", "0.5", "--output", str(tmp_path),
    )  # fmt: skip
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("imgbench: run failed: cannot connect to the WebSocket receiver")


def test_receiver_shuts_down_gracefully_on_sigterm(tmp_path: Path) -> None:
    ready = tmp_path / "ready.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "receiver", "--port", "0", "--grpc-port", "0", "--http-port", "0",
         "--log-format", "json"],
        env={**os.environ, READY_FILE_ENV: str(ready)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while not ready.exists():
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        out = proc.stdout.read() if proc.stdout else ""
        assert '"receiver stopped"' in out
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize("flag", ["--help"])
def test_every_flag_mentions_its_environment_variable(flag: str) -> None:
    proc = imgbench("compare", flag)
    assert proc.returncode == 0
    assert "env IMGBENCH_IMAGES" in proc.stdout and "env IMGBENCH_DELAY" in proc.stdout


def test_sweep_writes_one_comparison_per_size_and_the_sweep_plot(tmp_path: Path) -> None:
    proc = imgbench(
        "sweep", "--sizes", "16KiB,256KiB", "--images", "2", "--delay", "0", "--warmup", "0",
        "--output", str(tmp_path),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert (run_dir / "sweep.md").exists() and (run_dir / "sweep.png").exists()
    results = sorted(run_dir.rglob("results.json"))
    sizes = sorted(Comparison.load(p).image["bytes"] for p in results)
    assert sizes == [16 * 1024, 256 * 1024]


def test_sweep_refuses_sizes_above_the_message_limit(tmp_path: Path) -> None:
    proc = imgbench("sweep", "--sizes", "2MiB", "--max-message-bytes", "1MiB")
    assert proc.returncode == 2
    assert "IMGBENCH_SWEEP_SIZES" in proc.stderr


def test_report_regenerates_outputs_from_saved_results(tmp_path: Path) -> None:
    proc = imgbench("compare", "--images", "2", "--delay", "0", "--output", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    summary = (run_dir / "summary.md").read_text()
    (run_dir / "summary.md").unlink()
    (run_dir / "report.html").unlink()
    proc = imgbench("report", str(run_dir))
    assert proc.returncode == 0, proc.stderr
    assert (run_dir / "summary.md").read_text() == summary
    assert (run_dir / "report.html").exists()


def test_report_compares_two_saved_runs(tmp_path: Path) -> None:
    for name in ("a", "b"):
        proc = imgbench(
            "compare", "--images", "10", "--delay", "0", "--warmup", "0",
            "--output", str(tmp_path / name),
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
    (a,) = list((tmp_path / "a").iterdir())
    (b,) = list((tmp_path / "b").iterdir())
    proc = imgbench("report", str(a), str(b), "--output", str(tmp_path / "ab"))
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "ab" / "compare.md").read_text()
    assert "websocket/binary" in text and "grpc/unary" in text
    # One verdict per protocol on the terminal, each with an interval and its method.
    for label in ("websocket/binary", "grpc/unary"):
        starts = (f"B {label}", f"no significant difference between B {label}")
        (line,) = [ln for ln in proc.stdout.splitlines() if ln.strip().startswith(starts)]
        assert "95% CI" in line
    assert proc.stdout.count("method: ratio of median transmission times, n=10 vs 10") == 2
    # An existing comparison is never replaced silently.
    again = imgbench("report", str(a), str(b), "--output", str(tmp_path / "ab"))
    assert again.returncode == 2 and "--output" in again.stderr and "--force" in again.stderr
    assert (tmp_path / "ab" / "compare.md").read_text() == text
    forced = imgbench("report", str(a), str(b), "--output", str(tmp_path / "ab"), "--force")
    assert forced.returncode == 0, forced.stderr
    # --format json: stdout is one document, valid against the schema, saying the same.
    as_json = imgbench("report", str(a), str(b), "--output", str(tmp_path / "abj"),
                       "--format", "json", "--fail-on-regression")  # fmt: skip
    assert as_json.returncode in (0, 99), as_json.stderr
    doc = json.loads(as_json.stdout)
    assert _schema_errors(doc) == []
    assert doc["schema"] == "imgbench.runs/1" and doc["compared"] == [
        "websocket/binary", "grpc/unary"]  # fmt: skip
    # The same verdicts as the text output (the bootstrap is seeded: deterministic).
    for v in doc["verdicts"]:
        assert f"  {v['text']}\n    method: {v['method']}\n" in proc.stdout, v
    assert (as_json.returncode == 99) == bool(doc["regressions"])
    # One saved run: its compare document, as compare --format json printed it.
    single = imgbench("report", str(a), "--format", "json")
    assert single.returncode == 0, single.stderr
    one = json.loads(single.stdout)
    assert _schema_errors(one) == [] and one["schema"] == "imgbench.compare/1"
    assert one["verdicts"] == json.loads((a / "results.json").read_text())["verdicts"]


def _schema_errors(doc: dict) -> list[str]:  # type: ignore[type-arg]
    from jsonschema import Draft202012Validator

    schema = json.loads((Path(__file__).resolve().parents[2] / "schemas" /
                         "compare.schema.json").read_text())  # fmt: skip
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    return [e.message for e in validator.iter_errors(doc)]
