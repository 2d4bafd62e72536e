"""The report says how the clocks relate: shared (exact), corrected (offset, bound,
drift, a warning when the bound is large), or uncorrected (and why)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from imgbench.measure.results import Comparison, ProtocolRun, Sample
from imgbench.report import clock_lines, load_samples_csv, summary_markdown, summary_table
from imgbench.report.samples_csv import write_samples_csv


def run(protocol: str, clock: dict[str, Any], bound_ns: int, corrected: bool) -> ProtocolRun:
    samples = [
        Sample(
            sequence=i,
            scheduled_ns=i * 10**9,
            send_ns=i * 10**9,
            receive_ns=i * 10**9 + 10**12 + 2_000_000,
            ack_ns=i * 10**9 + 3_000_000,
            image_bytes=1000,
            message_bytes=1100,
            checksum_ok=True,
            transmission_ns=2_000_000 if corrected else None,
            bound_ns=bound_ns,
        )
        for i in range(3)
    ]
    return ProtocolRun(
        protocol=protocol, mode="binary" if protocol == "websocket" else "unary",
        compression=False, images=3, warmup=0, delay_s=1.0, in_flight=1, repetition=0,
        position=0, image_bytes=1000, message_bytes=1100, samples=samples, clock=clock,
    )  # fmt: skip


def comparison(*runs: ProtocolRun) -> Comparison:
    return Comparison(
        run_id="r", created_at="now", settings={}, versions={}, host={},
        image={"bytes": 1000, "name": "x"}, runs=list(runs),
    )  # fmt: skip


CORRECTED = {
    "status": "corrected", "offset_ns": 10**12, "bound_ns": 50_000, "drift_ppm": 1.5,
    "drift_bound_ppm": 0.5, "n_probes": 24,
}  # fmt: skip


def test_corrected_run_reports_offset_bound_drift_and_no_warning_when_small() -> None:
    c = comparison(run("websocket", CORRECTED, 50_000, True))
    (line,) = clock_lines(c)
    assert "offset 1000000.000 ms ± 0.050 ms" in line and "drift 1.50 ± 0.50 ppm" in line
    rows = {r[0]: r[1:] for r in summary_table(c).rows}
    assert rows["clock"] == ["corrected"]
    assert rows["clock offset (ms)"] == ["1000000.000"]
    assert rows["clock bound (ms)"] == ["0.050"]
    assert rows["transmission bound, max (ms)"] == ["0.0500"]
    assert rows["transmission p50 (ms)"] == ["2.000"]  # the corrected time, not 1000 s


def test_bound_above_ten_percent_of_the_median_is_a_warning() -> None:
    c = comparison(run("grpc", {**CORRECTED, "bound_ns": 300_000}, 300_000, True))
    lines = clock_lines(c)
    assert any(line.startswith("WARNING grpc/unary") and "15%" in line for line in lines), lines
    assert "WARNING grpc/unary" in summary_markdown(c)


def test_shared_and_uncorrected_say_so() -> None:
    c = comparison(
        run("websocket", {"status": "shared", "offset_ns": 3, "bound_ns": 40_000}, 0, False),
        run("grpc", {"status": "uncorrected", "why": "revision 1 receiver"}, 0, False),
    )
    shared, uncorrected = clock_lines(c)
    assert "clocks shared" in shared and "exact figures" in shared
    assert "uncorrected" in uncorrected and "revision 1 receiver" in uncorrected
    rows = {r[0]: r[1:] for r in summary_table(c).rows}
    assert rows["clock"] == ["shared", "uncorrected"]
    assert rows["clock offset (ms)"] == ["-", "-"]


def test_samples_csv_keeps_the_correction_and_reads_old_files(tmp_path: Path) -> None:
    c = comparison(run("websocket", CORRECTED, 50_000, True))
    path = tmp_path / "samples.csv"
    write_samples_csv(c, path)
    rows = load_samples_csv(path)
    assert [r.sample for r in rows] == c.runs[0].samples
    assert rows[0].sample.transmission_s == 0.002  # corrected, not 1000 s
    # A file from before clock correction: the two last columns missing.
    lines = path.read_text().splitlines()
    old = "\n".join(",".join(line.split(",")[:-2]) for line in lines) + "\n"
    path.write_text(old)
    assert [r.sample.transmission_ns for r in load_samples_csv(path)] == [None] * 3
