"""Report outputs of a synthetic comparison, checked against independent computations.

References are computed here from the raw nanosecond timestamps (numpy,
statistics), not with the code under test; only the expected *rounding*
is taken from how many decimals a cell shows.
"""

from __future__ import annotations

import base64
import csv
import itertools
import math
import re
import statistics
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imgbench import report
from imgbench.errors import ResultsError
from imgbench.measure.results import Comparison, ProtocolRun, Sample
from imgbench.report import plots

MS = 1_000_000  # ns per ms
# protocol, mode, median transmission time in ms
SPECS = [("websocket", "binary", 2.0), ("grpc", "unary", 3.0), ("grpc", "stream", 3.02)]


def make_comparison(
    *,
    run_id: str = "run-a",
    image_bytes: int = 100_000,
    repeat: int = 2,
    images: int = 40,
    seed: int = 0,
    slow: dict[str, float] | None = None,
    specs: list[tuple[str, str, float]] = SPECS,
) -> Comparison:
    """Closed-loop runs in ABBA order with lognormal times, 1 warm-up image each."""
    rng = np.random.default_rng(seed)
    slow = slow or {}
    comparison = Comparison(
        run_id=run_id,
        created_at="2025-01-02T03:04:05+00:00",
        settings={"images": images, "delay": 0.005, "warmup": 1, "repeat": repeat, "seed": seed},
        versions={"imgbench": "0.1.0", "grpcio": "1.85.1"},
        host={"machine": "x86_64", "cpu_count": 2, "nested": {"a": 1}},
        image={"name": "synthetic.bin", "bytes": image_bytes, "content_type": "image/png"},
    )
    for rep in range(repeat):
        order = specs if rep % 2 == 0 else specs[::-1]
        for position, (protocol, mode, median_ms) in enumerate(order):
            label = f"{protocol}/{mode}"
            clock = 10_000 * MS * (rep + 1) + position * 1_000 * MS
            samples: list[Sample] = []
            for sequence in range(images + 1):
                tx_ns = int(rng.lognormal(math.log(median_ms * slow.get(label, 1.0)), 0.25) * MS)
                send = clock + int(rng.integers(0, 3_000))
                receive = clock + tx_ns
                ack = receive + int(rng.integers(50_000, 200_000))
                message = image_bytes + (37 if mode != "json" else image_bytes // 3)
                samples.append(
                    Sample(sequence, clock, send, receive, ack, image_bytes, message, True)
                )
                clock = ack + 5 * MS
            comparison.runs.append(
                ProtocolRun(
                    protocol=protocol,
                    mode=mode,
                    compression=False,
                    images=images,
                    warmup=1,
                    delay_s=0.005,
                    in_flight=1,
                    repetition=rep,
                    position=position,
                    image_bytes=image_bytes,
                    message_bytes=samples[0].message_bytes,
                    samples=samples[1:],
                    warmup_samples=samples[:1],
                    costs={
                        "transmitter_cpu_s": 0.1 + 0.01 * rep + 0.05 * position,
                        "receiver_cpu_s": 0.05 + 0.01 * rep,
                        "transmitter_cpu_ms_per_mb": 20.0 + rep,
                        "receiver_cpu_ms_per_mb": 10.0 + rep,
                        "receiver_peak_rss_bytes": float(60 * 2**20 + rep * 2**20),
                    },
                    started_at=f"2025-01-02T03:0{rep}:0{position}+00:00",
                )
            )
    return comparison


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def md_rows(text: str, heading: str) -> tuple[list[str], list[list[str]]]:
    """The first Markdown table after ``heading``: headers and rows of cells."""
    block: list[str] = []
    for line in text.split(heading, 1)[1].splitlines()[1:]:
        if line.startswith("|"):
            block.append(line)
        elif block:
            break
    assert block, f"no table after {heading}"

    def cells(line: str) -> list[str]:
        return [c.strip() for c in line.strip().strip("|").split(" | ")]

    assert set(block[1]) <= set("|-: ")
    return cells(block[0]), [cells(line) for line in block[2:]]


def md_table(text: str, heading: str) -> tuple[list[str], dict[str, list[str]]]:
    """Like :func:`md_rows`, rows keyed by their first cell (which must be unique)."""
    headers, rows = md_rows(text, heading)
    keyed = {row[0]: row[1:] for row in rows}
    assert len(keyed) == len(rows), "duplicate row names"
    return headers, keyed


def assert_rounded(cell: str, expected: float) -> None:
    """``cell`` is ``expected`` rounded to the decimals the cell shows."""
    number = re.match(r"-?[0-9.]+", cell)
    assert number, cell
    text = number.group(0)
    decimals = len(text.split(".")[1]) if "." in text else 0
    assert abs(float(text) - expected) <= 0.5 * 10**-decimals * (1 + 1e-9), (cell, expected)


def times_ms(comparison: Comparison, label: str, field: str = "transmission") -> list[float]:
    out = []
    for run in comparison.runs:
        if run.label != label:
            continue
        for s in run.samples:
            if field == "transmission":
                out.append((s.receive_ns - s.scheduled_ns) / MS)
            elif field == "round_trip":
                out.append((s.ack_ns - s.send_ns) / MS)
            else:
                out.append((s.send_ns - s.scheduled_ns) / MS)
    return out


def assert_png(path: Path, width: int | None = None, height: int | None = None) -> None:
    with Image.open(path) as img:
        img.verify()
    with Image.open(path) as img:
        assert img.format == "PNG"
        w, h = img.size
        assert w == (width or round(plots.PLOT_WIDTH_IN * plots.PLOT_DPI))
        assert h == height if height is not None else h > 100
        img.load()


def labels(comparison: Comparison) -> list[str]:
    return list(dict.fromkeys(r.label for r in comparison.runs))


@pytest.fixture(scope="module")
def comparison() -> Comparison:
    return make_comparison()


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory, comparison: Comparison) -> Path:
    out = tmp_path_factory.mktemp("run")
    written = report.write_outputs(comparison, out)
    assert written.notes == []
    return out


# --------------------------------------------------------------------------
# write_outputs
# --------------------------------------------------------------------------


def test_every_file_is_written_and_returned(tmp_path: Path, comparison: Comparison) -> None:
    written = report.write_outputs(comparison, tmp_path / "new" / "dir")
    names = [p.name for p in written]
    assert names == [
        "results.json",
        "samples.csv",
        "summary.md",
        "transmission.png",
        "latency_cdf.png",
        "throughput.png",
        "cpu.png",
        "report.html",
    ]
    for path in written:
        assert path.is_file() and path.stat().st_size > 0
    # Nothing else in the directory.
    assert sorted(p.name for p in (tmp_path / "new" / "dir").iterdir()) == sorted(names)


def test_pngs_are_valid_images_of_the_documented_size(outputs: Path) -> None:
    n_labels = len(SPECS)
    dpi = plots.PLOT_DPI
    assert_png(outputs / "latency_cdf.png", height=round(4.5 * dpi))
    assert_png(outputs / "throughput.png", height=round(4.5 * dpi))
    assert_png(outputs / "cpu.png", height=round(4.5 * dpi))
    assert_png(outputs / "transmission.png", height=round((1.0 + 1.8 * n_labels) * dpi))


def test_protocol_colors_are_the_fixed_ones(outputs: Path) -> None:
    with Image.open(outputs / "throughput.png") as img:
        colors = {rgb for _, rgb in img.convert("RGB").getcolors(maxcolors=1 << 20) or []}
    assert (0x1F, 0x77, 0xB4) in colors  # websocket
    assert (0xFF, 0x7F, 0x0E) in colors  # grpc


def test_results_json_round_trips(outputs: Path, comparison: Comparison) -> None:
    loaded = Comparison.load(outputs / "results.json")
    assert loaded.to_dict() == comparison.to_dict()


def test_csv_round_trips_into_the_json_samples(outputs: Path) -> None:
    saved = Comparison.load(outputs / "results.json")
    rows = report.load_samples_csv(outputs / "samples.csv")
    expected_rows = sum(len(r.samples) + len(r.warmup_samples) for r in saved.runs)
    assert len(rows) == expected_rows
    for index, run in enumerate(saved.runs):
        mine = [row for row in rows if row.run_index == index]
        assert [row.sample for row in mine if row.warmup] == run.warmup_samples
        assert [row.sample for row in mine if not row.warmup] == run.samples
        for row in mine:
            assert (row.label, row.protocol, row.mode) == (run.label, run.protocol, run.mode)
            assert (row.compression, row.repetition, row.position) == (
                run.compression,
                run.repetition,
                run.position,
            )


def test_csv_derived_columns_are_exact(outputs: Path) -> None:
    with (outputs / "samples.csv").open(newline="") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames is not None
        for column in ("warmup", "transmission_s", "queue_s", "round_trip_s", "checksum_ok"):
            assert column in reader.fieldnames
        for row in reader:
            scheduled, send = int(row["scheduled_ns"]), int(row["send_ns"])
            receive, ack = int(row["receive_ns"]), int(row["ack_ns"])
            assert float(row["transmission_s"]) == (receive - scheduled) / 1e9
            assert float(row["queue_s"]) == (send - scheduled) / 1e9
            assert float(row["round_trip_s"]) == (ack - send) / 1e9


def test_load_samples_csv_rejects_other_files(tmp_path: Path) -> None:
    bad = tmp_path / "x.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError):
        report.load_samples_csv(bad)


def test_summary_has_each_label_and_the_figures(outputs: Path, comparison: Comparison) -> None:
    text = (outputs / "summary.md").read_text()
    headers, rows = md_table(text, "## All figures")
    assert headers[1:] == labels(comparison)
    for col, label in enumerate(labels(comparison)):
        tx = np.array(times_ms(comparison, label))
        rtt = np.array(times_ms(comparison, label, "round_trip"))
        queue = np.array(times_ms(comparison, label, "queue"))
        assert rows["images measured (pooled)"][col] == str(len(tx))
        assert rows["repetitions"][col] == "2"
        assert rows["warm-up images (excluded)"][col] == "2"
        for stat in ("min", "p50", "p99", "max"):  # at least 3 significant digits shown
            digits = rows[f"transmission {stat} (ms)"][col].replace(".", "").lstrip("0")
            assert len(digits) >= 3, rows[f"transmission {stat} (ms)"][col]
        assert_rounded(rows["transmission min (ms)"][col], float(tx.min()))
        assert_rounded(rows["transmission max (ms)"][col], float(tx.max()))
        for q in (50, 90, 99):
            assert_rounded(rows[f"transmission p{q} (ms)"][col], float(np.percentile(tx, q)))
            assert_rounded(rows[f"round trip p{q} (ms)"][col], float(np.percentile(rtt, q)))
            assert_rounded(rows[f"queue p{q} (ms)"][col], float(np.percentile(queue, q)))
        assert_rounded(rows["transmission mean (ms)"][col], statistics.fmean(tx))
        assert_rounded(rows["transmission stdev (ms)"][col], statistics.stdev(tx))
        assert_rounded(rows["round trip mean (ms)"][col], statistics.fmean(rtt))
        runs = [r for r in comparison.runs if r.label == label]
        image_bytes = sum(s.image_bytes for r in runs for s in r.samples)
        assert_rounded(
            rows["throughput, bytes / cumulative time (MB/s, outlier-sensitive)"][col],
            image_bytes / (tx.sum() / 1e3) / 1e6,
        )
        n_images = sum(len(r.samples) for r in runs)
        assert_rounded(
            rows["throughput, image bytes / median time (MB/s)"][col],
            image_bytes / n_images / (float(np.median(tx)) / 1e3) / 1e6,
        )
        totals = [
            (max(s.receive_ns for s in r.samples) - min(s.scheduled_ns for s in r.samples)) / 1e9
            for r in runs
        ]
        assert_rounded(
            rows["total transfer, mean per repetition (s)"][col], statistics.fmean(totals)
        )
        assert_rounded(
            rows["cumulative transmission, mean per repetition (ms)"][col], tx.sum() / len(runs)
        )
        message = sum(s.message_bytes for r in runs for s in r.samples)
        assert_rounded(rows["message bytes / image bytes"][col], message / image_bytes)
        cpu = statistics.fmean(r.costs["transmitter_cpu_s"] for r in runs)
        assert_rounded(rows["transmitter CPU time (mean per repetition)"][col], cpu * 1e3)
        peak = max(r.costs["receiver_peak_rss_bytes"] for r in runs)
        assert_rounded(rows["receiver peak RSS (max per repetition)"][col], peak / 2**20)


def test_summary_matches_compute_figures(outputs: Path, comparison: Comparison) -> None:
    # The same numbers as the result model's own figures (the JSON's "figures").
    from imgbench.measure.results import compute_figures

    _, rows = md_table((outputs / "summary.md").read_text(), "## All figures")
    for col, label in enumerate(labels(comparison)):
        f = compute_figures(comparison.samples_for(label))
        for stat in ("min", "p50", "p90", "p99", "max", "mean", "stdev"):
            value = getattr(f.transmission, stat) * 1e3
            assert_rounded(rows[f"transmission {stat} (ms)"][col], value)
        assert_rounded(
            rows["throughput, bytes / cumulative time (MB/s, outlier-sensitive)"][col],
            f.throughput_mb_s,
        )


def test_summary_verdicts_name_the_faster_side(outputs: Path, comparison: Comparison) -> None:
    text = (outputs / "summary.md").read_text()
    section = text.split("\n\n", 1)[1].split("## ", 1)[0]
    lines = [ln[2:].strip("*") for ln in section.splitlines() if ln.startswith("- ")]
    methods = [ln.strip() for ln in section.splitlines() if ln.startswith("  method: ")]
    assert len(methods) == len(lines)
    # 2 repetitions: fewer than needed to resample them, so pooled with their spread.
    assert all("n=80 vs 80, 2 repetitions" in m and "repetitions pooled" in m for m in methods)
    pairs = list(itertools.combinations(labels(comparison), 2))
    assert len(lines) == len(pairs)
    by_pair = dict(zip(pairs, lines, strict=True))
    fast = by_pair[("websocket/binary", "grpc/unary")]
    assert fast.startswith("websocket/binary is ") and " faster than grpc/unary" in fast
    factor = float(re.search(r"is ([0-9.]+)x", fast).group(1))  # type: ignore[union-attr]
    ratio = np.median(times_ms(comparison, "grpc/unary")) / np.median(
        times_ms(comparison, "websocket/binary")
    )
    assert factor == pytest.approx(ratio, abs=0.006)
    low, high = map(float, re.search(r"CI ([0-9.]+)-([0-9.]+)", fast).groups())  # type: ignore[union-attr]
    assert low < factor < high
    # 3.0 ms against 3.02 ms with 80 samples each: not distinguishable.
    assert by_pair[("grpc/unary", "grpc/stream")].startswith("no significant difference")


def test_summary_lists_settings_versions_host_and_repetitions(
    outputs: Path, comparison: Comparison
) -> None:
    text = (outputs / "summary.md").read_text()
    _, settings = md_table(text, "## Settings")
    assert settings["delay"] == ["0.005"] and settings["images"] == ["40"]
    _, versions = md_table(text, "## Versions")
    assert versions["grpcio"] == ["1.85.1"]
    _, host = md_table(text, "## Host")
    assert host["nested.a"] == ["1"]
    headers, reps = md_rows(text, "## Repetitions")
    assert headers[:3] == ["label", "repetition", "position"]
    assert [(r[0], int(r[1]), int(r[2])) for r in reps] == [
        (run.label, run.repetition, run.position) for run in comparison.runs
    ]
    for row, run in zip(reps, comparison.runs, strict=True):
        p50 = float(np.median([(s.receive_ns - s.scheduled_ns) / MS for s in run.samples]))
        assert_rounded(row[headers.index("transmission p50 (ms)")], p50)


def test_report_html_is_standalone_with_the_pngs_embedded(outputs: Path) -> None:
    page = (outputs / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    sources = re.findall(r'src="([^"]+)"', page)
    assert len(sources) == 4
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert not re.search(r'(href|src)="(https?:)?//', page)  # nothing fetched from outside
    embedded = {base64.b64decode(s.split(",", 1)[1]) for s in sources}
    on_disk = {p.read_bytes() for p in outputs.glob("*.png")}
    assert embedded == on_disk
    for label in ("websocket/binary", "grpc/unary", "grpc/stream"):
        assert label in page


# --------------------------------------------------------------------------
# regenerate
# --------------------------------------------------------------------------


def test_regenerate_reproduces_the_outputs(tmp_path: Path, comparison: Comparison) -> None:
    report.write_outputs(comparison, tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    for name in ("summary.md", "samples.csv", "report.html", "throughput.png"):
        (tmp_path / name).unlink()
    written = report.regenerate(tmp_path)
    assert "results.json" not in [p.name for p in written]  # the raw data is not rewritten
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert set(after) == set(before)
    for name in ("results.json", "summary.md", "samples.csv"):
        assert after[name] == before[name], name
    assert_png(tmp_path / "throughput.png")


def test_regenerate_without_results_fails(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match=r"no results\.json"):
        report.regenerate(tmp_path)


# --------------------------------------------------------------------------
# compare_results
# --------------------------------------------------------------------------


def test_compare_results_of_two_saved_runs(tmp_path: Path) -> None:
    a = make_comparison(run_id="run-a", seed=1)
    b = make_comparison(run_id="run-b", seed=2, slow={"grpc/unary": 2.0})
    b.versions["grpcio"] = "1.86.0"
    report.write_outputs(a, tmp_path / "a")
    report.write_outputs(b, tmp_path / "b")
    written = report.compare_results(tmp_path / "a", tmp_path / "b", tmp_path / "cmp")
    assert [p.name for p in written] == ["compare.md", "compare_cdf.png", "compare.html"]
    assert_png(tmp_path / "cmp" / "compare_cdf.png")
    text = (tmp_path / "cmp" / "compare.md").read_text()
    _, rows = md_table(text, "## Transmission time")
    assert list(rows) == labels(a)
    for label in labels(a):
        a_p50 = float(np.median(times_ms(a, label)))
        b_p50 = float(np.median(times_ms(b, label)))
        assert_rounded(rows[label][0], a_p50)
        assert_rounded(rows[label][1], b_p50)
        assert_rounded(rows[label][2], b_p50 / a_p50)
    assert "B grpc/unary is " in text and "x slower than A grpc/unary" in text
    factor = float(re.search(r"B grpc/unary is ([0-9.]+)x slower", text).group(1))  # type: ignore[union-attr]
    assert 1.7 < factor < 2.3
    _, diff = md_table(text, "## What differs between the runs")
    assert diff["versions.grpcio"] == ["1.85.1", "1.86.0"]
    assert diff["settings.seed"] == ["1", "2"]
    page = (tmp_path / "cmp" / "compare.html").read_text()
    assert page.count("data:image/png;base64,") == 1


def test_compare_lists_labels_in_one_run_only(tmp_path: Path) -> None:
    a = make_comparison(run_id="a", specs=SPECS[:2])
    b = make_comparison(run_id="b", specs=[SPECS[0], ("websocket", "json", 4.0)])
    report.write_outputs(a, tmp_path / "a")
    report.write_outputs(b, tmp_path / "b")
    report.compare_results(tmp_path / "a" / "results.json", tmp_path / "b", tmp_path / "c")
    text = (tmp_path / "c" / "compare.md").read_text()
    _, rows = md_table(text, "## Transmission time")
    assert list(rows) == ["websocket/binary"]
    assert "grpc/unary (only in A)" in text and "websocket/json (only in B)" in text


# --------------------------------------------------------------------------
# size sweep
# --------------------------------------------------------------------------


def test_sweep_outputs(tmp_path: Path) -> None:
    sizes = [16 * 1024, 1024 * 1024, 256 * 1024]  # deliberately unsorted
    comparisons = [
        make_comparison(run_id=f"s{i}", image_bytes=size, seed=i, repeat=1, images=20)
        for i, size in enumerate(sizes)
    ]
    written = report.write_sweep_outputs(comparisons, tmp_path)
    names = {p.relative_to(tmp_path).as_posix() for p in written}
    for expected in ("sweep.md", "sweep.png", "report.html"):
        assert expected in names
    for sub in ("size-16KiB", "size-256KiB", "size-1MiB"):
        assert f"{sub}/results.json" in names and f"{sub}/summary.md" in names
    assert_png(tmp_path / "sweep.png", height=round(4.5 * plots.PLOT_DPI))
    text = (tmp_path / "sweep.md").read_text()
    headers, rows = md_table(text, "## Median transmission time (ms)")
    assert headers[1:] == labels(comparisons[0])
    assert [key.split(" ")[0] for key in rows] == ["16KiB", "256KiB", "1MiB"]
    by_size = dict(zip(sizes, comparisons, strict=True))
    for key, size in zip(rows, sorted(sizes), strict=True):
        for col, label in enumerate(headers[1:]):
            assert_rounded(rows[key][col], float(np.median(times_ms(by_size[size], label))))
    _, throughput = md_table(text, "## Throughput, image bytes / median time (MB/s)")
    key = next(iter(throughput))
    tx = times_ms(by_size[16 * 1024], "websocket/binary")
    assert_rounded(throughput[key][0], 16 * 1024 / (float(np.median(tx)) / 1e3) / 1e6)
    page = (tmp_path / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 1
    assert 'href="size-1MiB/report.html"' in page

    # regenerate recognises the sweep layout and rebuilds the same sweep.md
    (tmp_path / "sweep.md").unlink()
    (tmp_path / "size-16KiB" / "summary.md").unlink()
    report.regenerate(tmp_path)
    assert (tmp_path / "sweep.md").read_text() == text
    assert (tmp_path / "size-16KiB" / "summary.md").is_file()


def test_sweep_rejects_duplicate_or_missing_sizes(tmp_path: Path) -> None:
    one = make_comparison(repeat=1, images=5)
    with pytest.raises(ValueError, match="duplicate"):
        report.write_sweep_outputs([one, make_comparison(repeat=1, images=5)], tmp_path)
    one.image.pop("bytes")
    with pytest.raises(ValueError):
        report.write_sweep_outputs([one], tmp_path)
    with pytest.raises(ValueError):
        report.write_sweep_outputs([], tmp_path)


# --------------------------------------------------------------------------
# without matplotlib, and odd inputs
# --------------------------------------------------------------------------


def test_without_matplotlib_everything_but_plots_is_written(
    tmp_path: Path, comparison: Comparison, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert not report.plots_available()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        written = report.write_outputs(comparison, tmp_path)
    assert any(issubclass(w.category, report.PlotsUnavailableWarning) for w in caught)
    assert [p.name for p in written] == ["results.json", "samples.csv", "summary.md", "report.html"]
    assert written.notes and "matplotlib" in written.notes[0]
    assert not list(tmp_path.glob("*.png"))
    page = (tmp_path / "report.html").read_text()
    assert "matplotlib is not installed" in page and "data:image/png" not in page
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", report.PlotsUnavailableWarning)
        sweep = report.write_sweep_outputs([comparison], tmp_path / "sweep")
    assert not [p for p in sweep if p.suffix == ".png"]


def test_a_label_without_measured_samples(tmp_path: Path) -> None:
    comparison = make_comparison(repeat=1, images=10)
    comparison.runs[1].samples = []  # e.g. a run that failed after its warm-up
    written = report.write_outputs(comparison, tmp_path)
    _, rows = md_table((tmp_path / "summary.md").read_text(), "## All figures")
    assert rows["transmission p50 (ms)"][1] == "n/a"
    assert rows["transmission p50 (ms)"][0] != "n/a"
    assert (tmp_path / "throughput.png") in written


def test_table_escapes_pipes() -> None:
    table = report.Table(headers=["a", "b"], rows=[["x|y", "<b>"]])
    assert "x\\|y" in table.markdown()
    assert "&lt;b&gt;" in table.html()


def test_sub_millisecond_times_keep_three_significant_digits(tmp_path: Path) -> None:
    fast = make_comparison(specs=[("websocket", "binary", 0.045), ("grpc", "unary", 0.0071)])
    report.write_outputs(fast, tmp_path)
    _, rows = md_table((tmp_path / "summary.md").read_text(), "## All figures")
    for col, label in enumerate(labels(fast)):
        cell = rows["transmission p50 (ms)"][col]
        assert len(cell.replace(".", "").lstrip("0")) >= 3, cell
        assert_rounded(cell, float(np.median(times_ms(fast, label))))
