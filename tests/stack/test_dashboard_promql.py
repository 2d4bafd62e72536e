"""Every PromQL expression of the Grafana dashboard, run against real data.

The test starts Debian's ``prometheus`` on a free loopback port with the
repository's ``prometheus/prometheus.yml`` (targets rewritten to loopback,
nothing else changed), a real receiver (``imgbench receiver``) and a real
transmitter in service mode (``imgbench transmitter --serve``). The transmitter
runs its comparison at start-up; once Prometheus scrapes both services the
test triggers a second run with ``POST /runs``, so that run is scraped from
before its first image to after its last. Then every ``expr`` of every panel
target in ``grafana/dashboards/imgbench.json`` is evaluated the way Grafana
would: instant targets as instant queries, range targets as range queries over
the run with Grafana's ``$__interval`` / ``$__rate_interval`` substituted. Each
must return data for both protocols (or both services), and the exact stat
panels must agree with the run's result JSON.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from helpers.external_tools import require_tool
from helpers.services import free_ports

pytestmark = pytest.mark.prometheus

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "grafana" / "dashboards" / "imgbench.json"
PROMETHEUS_CONFIG = ROOT / "prometheus" / "prometheus.yml"
PROTOCOLS = ("websocket", "grpc")
JOBS = ("imgbench-receiver", "imgbench-transmitter")
IMAGES = 3
SCRAPE_S = 1.0  # scrape_interval in prometheus.yml (checked below)
STEP_S = 1.0  # range-query step; Grafana never goes below timeInterval (1s)
TRACE_ID = re.compile(r"^[0-9a-f]{32}$")

T = TypeVar("T")


# ---- helpers ------------------------------------------------------------------


def http(
    url: str, method: str = "GET", data: bytes | None = None, timeout: float = 5.0
) -> tuple[int, Any]:
    """``(status, decoded JSON or None)``; HTTP errors are returned, not raised."""
    req = urllib.request.Request(url, method=method, data=data)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, body = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    try:
        return status, json.loads(body) if body else None
    except ValueError:
        return status, body.decode(errors="replace")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, stack: Stack) -> T:
    """Poll ``probe`` until it returns something other than None/False."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        stack.check_alive()
        try:
            value = probe()
        except (OSError, ValueError) as exc:  # not up yet
            last_error, value = exc, None
        if value is not None and value is not False:
            return value
        time.sleep(0.2)
    pytest.fail(
        f"timed out after {timeout:.0f}s waiting for {what} (last error: {last_error})"
        f"\n{stack.logs()}"
    )


@dataclass
class Stack:
    """The processes of the test and their addresses."""

    tmp: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    prometheus: str = ""
    transmitter: str = ""
    receiver: str = ""
    run: dict[str, Any] = field(default_factory=dict)
    run_start: float = 0.0
    run_end: float = 0.0

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        log = (self.tmp / f"{name}.log").open("wb")
        self.procs[name] = subprocess.Popen(
            argv, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                pytest.fail(f"{name} exited with {proc.returncode}\n{self.logs()}")

    def logs(self, tail: int = 3000) -> str:
        out = []
        for name in self.procs:
            text = (self.tmp / f"{name}.log").read_text(errors="replace")
            out.append(f"---- {name} (last {tail} chars) ----\n{text[-tail:]}")
        return "\n".join(out)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        params = {"query": expr, "time": f"{at if at is not None else time.time():.3f}"}
        return self._api("query", params)

    def query_range(self, expr: str, start: float, end: float) -> list[dict[str, Any]]:
        params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{STEP_S}"}
        return self._api("query_range", params)

    def exemplars(self, expr: str, start: float, end: float) -> list[dict[str, Any]]:
        params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}"}
        return self._api("query_exemplars", params)

    def _api(self, endpoint: str, params: dict[str, str]) -> list[dict[str, Any]]:
        url = f"{self.prometheus}/api/v1/{endpoint}"
        status, body = http(url, "POST", urllib.parse.urlencode(params).encode())
        assert status == 200 and isinstance(body, dict) and body.get("status") == "success", (
            f"Prometheus rejected {endpoint} {params.get('query')!r}: {status} {body}"
        )
        data = body["data"]
        result: list[dict[str, Any]] = data if endpoint == "query_exemplars" else data["result"]
        if endpoint == "query":
            assert data["resultType"] == "vector", f"{params['query']!r} is not a vector"
        return result


def service_env(tmp: Path, **settings: str | int | float) -> dict[str, str]:
    """The test's environment without any OTEL_/IMGBENCH_/service variables, plus ``settings``."""
    prefixes = ("OTEL_", "IMGBENCH_", "RECEIVER_", "TRANSMITTER_", "RUN_INTERVAL")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env.update({k: str(v) for k, v in settings.items()})
    env["IMGBENCH_LOG_FORMAT"] = "json"
    env["IMGBENCH_LOG_LEVEL"] = "info"
    env["IMGBENCH_OUTPUT"] = str(tmp / "results")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def loopback_config(receiver_port: int, transmitter_port: int) -> str:
    """prometheus.yml with the compose targets pointed at the test's loopback ports."""
    text = PROMETHEUS_CONFIG.read_text()
    for target, port in (("receiver:9101", receiver_port), ("transmitter:9102", transmitter_port)):
        assert text.count(f'"{target}"') == 1, f"{target} not found once in {PROMETHEUS_CONFIG}"
        text = text.replace(f'"{target}"', f'"127.0.0.1:{port}"')
    assert re.search(r"^\s*scrape_interval:\s*1s\s*$", text, re.M), "scrape_interval is not 1s"
    # The copy lives in a temporary directory: point rule_files at the repository's.
    rules = "rules/imgbench.rules.yml"
    assert text.count(f"- {rules}") == 1, f"rule_files does not list {rules}"
    return text.replace(f"- {rules}", f"- {PROMETHEUS_CONFIG.parent / rules}")


def find_string(obj: Any, key: str) -> str | None:
    """First string value of ``key`` anywhere in ``obj``."""
    if isinstance(obj, dict):
        if isinstance(obj.get(key), str):
            return str(obj[key])
        values: Any = obj.values()
    elif isinstance(obj, list):
        values = obj
    else:
        return None
    for value in values:
        found = find_string(value, key)
        if found is not None:
            return found
    return None


def scraped_after(stack: Stack, moment: float) -> bool:
    """Whether both services have a stored scrape later than ``moment`` (Unix time)."""
    rows = stack.query(f'timestamp(imgbench_runs_in_progress{{job="{JOBS[1]}"}})')
    rows += stack.query(f'timestamp(imgbench_images_in_flight{{job="{JOBS[0]}"}})')
    return len(rows) == 2 and all(float(r["value"][1]) > moment for r in rows)


# ---- the stack ------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    prometheus = require_tool("prometheus")
    tmp = tmp_path_factory.mktemp("promql")
    ws, grpc, rhttp, thttp, prom = free_ports(5)
    s = Stack(tmp)
    s.prometheus = f"http://127.0.0.1:{prom}"
    s.receiver = f"http://127.0.0.1:{rhttp}"
    s.transmitter = f"http://127.0.0.1:{thttp}"
    imgbench = [sys.executable, "-m", "imgbench.cli"]
    ports = {"RECEIVER_PORT": ws, "RECEIVER_GRPC_PORT": grpc, "RECEIVER_HTTP_PORT": rhttp}
    try:
        s.start(
            "receiver",
            [*imgbench, "receiver"],
            service_env(tmp, RECEIVER_BIND="127.0.0.1", OTEL_SERVICE_NAME=JOBS[0], **ports),
        )
        config = tmp / "prometheus.yml"
        config.write_text(loopback_config(rhttp, thttp))
        s.start(
            "prometheus",
            [
                prometheus,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom}",
                "--enable-feature=exemplar-storage",
                "--log.level=warn",
            ],
            {"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        )
        wait_for("receiver /healthz", lambda: http(f"{s.receiver}/healthz")[0] == 200, 30, s)
        wait_for("prometheus ready", lambda: http(f"{s.prometheus}/-/ready")[0] == 200, 30, s)
        s.start(
            "transmitter",
            [*imgbench, "transmitter", "--serve"],
            service_env(
                tmp,
                TRANSMITTER_BIND="127.0.0.1",
                TRANSMITTER_PORT=thttp,
                RUN_INTERVAL_SECONDS=0,
                RECEIVER_HOST="127.0.0.1",
                IMGBENCH_IMAGES=IMAGES,
                IMGBENCH_DELAY=0.1,
                IMGBENCH_WARMUP=1,
                IMGBENCH_PROTOCOLS=",".join(PROTOCOLS),
                IMGBENCH_CONNECT_TIMEOUT=10,
                OTEL_SERVICE_NAME=JOBS[1],
                **ports,
            ),
        )

        def latest() -> dict[str, Any] | None:
            status, body = http(f"{s.transmitter}/runs/latest")
            return body if status == 200 and isinstance(body, dict) else None

        first = wait_for("the start-up comparison", latest, 60, s)
        first_end = time.time()
        assert first.get("status") == "ok", f"start-up comparison failed: {first}"

        # Both targets up, scraped a few times, and scraped after the start-up run
        # ended: everything from here on belongs to the measured run.
        def scraped() -> bool:
            rows = s.query("count_over_time(up[1m]) >= 3 and up == 1")
            return {r["metric"].get("job") for r in rows} >= set(JOBS) and scraped_after(
                s, first_end + SCRAPE_S
            )

        wait_for("prometheus scraping both services", scraped, 30, s)
        # One more scrape interval: a lookup at run_start - 1 scrape (what
        # `offset $__interval` does at the first step) then finds that scrape.
        time.sleep(1.5 * SCRAPE_S)

        s.run_start = time.time()
        status, started = http(f"{s.transmitter}/runs", "POST", b"")
        assert status == 202, f"POST /runs answered {status}: {started}"
        run_id = find_string(started, "run_id")
        assert run_id, f"POST /runs gave no run_id: {started}"

        def this_run() -> dict[str, Any] | None:
            body = latest()
            return body if body is not None and find_string(body, "run_id") == run_id else None

        s.run = wait_for(f"run {run_id}", this_run, 60, s)
        s.run_end = time.time()
        assert s.run.get("status") == "ok", f"run {run_id} failed: {s.run}"

        # A couple of scrapes after the run ended, so the last-run gauges are stored.
        wait_for(
            "two scrapes after the run", lambda: scraped_after(s, s.run_end + 2 * SCRAPE_S), 30, s
        )
        # ... and the recording rules the dashboard reads evaluated after them.
        for rule in RECORDED:
            wait_for(
                f"recording rule {rule} after the run",
                lambda rule=rule: any(
                    float(r["value"][1]) > s.run_end + 2 * SCRAPE_S
                    for r in s.query(f"timestamp({rule})")
                ),
                30,
                s,
            )
        yield s
    finally:
        s.stop()


# ---- the dashboard's targets ----------------------------------------------------------


@dataclass(frozen=True)
class Target:
    panel: str
    panel_type: str
    ref: str
    expr: str
    instant: bool
    exemplar: bool

    def __str__(self) -> str:
        return f"{self.panel} [{self.ref}]"


def dashboard_targets() -> list[Target]:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = list(dashboard["panels"])
    for panel in dashboard["panels"]:  # panels nested in collapsed rows
        panels.extend(panel.get("panels", []))
    targets = [
        Target(
            panel=p["title"],
            panel_type=p["type"],
            ref=t.get("refId", "?"),
            expr=t["expr"],
            instant=bool(t.get("instant")) and not t.get("range", False),
            exemplar=bool(t.get("exemplar")),
        )
        for p in panels
        for t in p.get("targets", [])
        if not t.get("hide")
    ]
    assert targets, "the dashboard has no targets"
    return targets


TARGETS = dashboard_targets()
#: Recording rules (level:metric:operations names) that the dashboard's queries read.
RECORDED = sorted({m for t in TARGETS for m in re.findall(r"\b[a-z_]+:[a-z0-9_:]+", t.expr)})


def grafana_macros(interval_s: float, range_s: float) -> dict[str, str]:
    """Grafana's built-in variables for a panel refreshed at ``interval_s`` steps.

    ``$__rate_interval`` is max($__interval + scrape interval, 4 x scrape interval),
    with the scrape interval taken from the datasource's timeInterval (1 s).
    """
    rate = max(interval_s + SCRAPE_S, 4 * SCRAPE_S)
    return {
        "__rate_interval_ms": f"{int(rate * 1000)}",
        "__rate_interval": f"{int(rate * 1000)}ms",
        "__interval_ms": f"{int(interval_s * 1000)}",
        "__interval": f"{int(interval_s * 1000)}ms",
        "__range_ms": f"{int(range_s * 1000)}",
        "__range_s": f"{int(range_s)}",
        "__range": f"{int(range_s)}s",
    }


def substitute(expr: str, interval_s: float, range_s: float) -> str:
    for name, value in grafana_macros(interval_s, range_s).items():  # longest names first
        expr = expr.replace(f"${{{name}}}", value).replace(f"${name}", value)
    # The dashboard's own variable at its default, All (its allValue).
    expr = expr.replace("$direction", "upload|push")
    assert "$" not in expr, f"unknown Grafana variable left in {expr!r}"
    return expr


def finite(value: str) -> bool:
    return math.isfinite(float(value))


def covered(series: list[dict[str, Any]], label: str) -> set[str]:
    """Values of ``label`` over the series that have at least one finite sample."""
    out = set()
    for s in series:
        samples = s.get("values") or [s["value"]]
        if any(finite(v) for _, v in samples):
            out.add(s["metric"].get(label, ""))
    return out


def wanted_protocols(expr: str) -> set[str]:
    named = {p for p in PROTOCOLS if f'protocol="{p}"' in expr}
    return named or set(PROTOCOLS)


@pytest.mark.parametrize("target", TARGETS, ids=str)
def test_target_returns_data(stack: Stack, target: Target) -> None:
    now = time.time()
    if target.instant:
        expr = substitute(target.expr, STEP_S, now - stack.run_start)
        result = stack.query(expr, at=now)
    else:
        start = stack.run_start - 5 * SCRAPE_S
        expr = substitute(target.expr, STEP_S, now - start)
        result = stack.query_range(expr, start, now)
    assert result, f"{target}: no data for {expr!r}"
    assert covered(result, "__name__"), f"{target}: only NaN/Inf from {expr!r}: {result}"

    if any("protocol" in s["metric"] for s in result):
        missing = wanted_protocols(target.expr) - covered(result, "protocol")
        assert not missing, f"{target}: no finite data for {sorted(missing)} from {expr!r}"
    elif 'protocol="' in target.expr:  # a per-protocol aggregate (heatmap): data of the run
        counts = [float(v) for s in result for _, v in s["values"] if finite(v)]
        assert counts and max(counts) > 0, f"{target}: the run left no trace in {expr!r}"
    if "job=~" in target.expr:
        missing_jobs = set(JOBS) - covered(result, "job")
        assert not missing_jobs, f"{target}: no data for {sorted(missing_jobs)} from {expr!r}"


@pytest.mark.parametrize("target", [t for t in TARGETS if t.exemplar], ids=str)
def test_exemplars_link_to_traces(stack: Stack, target: Target) -> None:
    start = stack.run_start - 5 * SCRAPE_S
    now = time.time()
    expr = substitute(target.expr, STEP_S, now - start)
    groups = stack.exemplars(expr, start, now)
    seen = set()
    for group in groups:
        for exemplar in group["exemplars"]:
            trace_id = exemplar["labels"].get("trace_id", "")
            assert TRACE_ID.match(trace_id), f"{target}: exemplar without a trace id: {exemplar}"
            seen.add(group["seriesLabels"].get("protocol", ""))
    assert set(PROTOCOLS) <= seen, f"{target}: exemplars only for {sorted(seen)}: {groups}"


def stat_values(stack: Stack, title: str) -> dict[str, list[float]]:
    """The instant values of the stat panel ``title``, by protocol."""
    (target,) = [t for t in TARGETS if t.panel == title]
    out: dict[str, list[float]] = {}
    for row in stack.query(substitute(target.expr, STEP_S, 60)):
        out.setdefault(row["metric"]["protocol"], []).append(float(row["value"][1]))
    return out


def test_images_received_is_exact(stack: Stack) -> None:
    values = stat_values(stack, "Images received")
    assert {p: sum(v) for p, v in values.items()} == dict.fromkeys(PROTOCOLS, IMAGES)


def test_median_matches_the_run_result(stack: Stack) -> None:
    """The dashboard's median is the run's exact median, not a bucket estimate."""
    expected = {r["protocol"]: r["figures"]["transmission"]["p50"] for r in stack.run["runs"]}
    values = stat_values(stack, "Median per-image time")
    assert set(values) == set(PROTOCOLS)
    for protocol, (value,) in values.items():
        assert value == pytest.approx(expected[protocol], rel=1e-6, abs=1e-9), protocol


def test_per_image_bars_cover_every_image(stack: Stack) -> None:
    (target,) = [t for t in TARGETS if t.panel_type == "barchart"]
    rows = stack.query(substitute(target.expr, STEP_S, 60))
    by_protocol: dict[str, set[str]] = {}
    for row in rows:
        assert finite(row["value"][1]) and float(row["value"][1]) > 0, row
        by_protocol.setdefault(row["metric"]["protocol"], set()).add(row["metric"]["sequence"])
    assert by_protocol == {p: {str(i) for i in range(IMAGES)} for p in PROTOCOLS}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_heatmap_counts_every_image_once(stack: Stack, protocol: str) -> None:
    """Summed over the steps of the run, the heatmap holds exactly the run's images."""
    (target,) = [t for t in TARGETS if t.panel_type == "heatmap" and f'"{protocol}"' in t.expr]
    now = time.time()
    rows = stack.query_range(
        substitute(target.expr, STEP_S, now - stack.run_start), stack.run_start, now
    )
    totals = {r["metric"]["le"]: sum(float(v) for _, v in r["values"]) for r in rows}
    assert totals.get("+Inf") == IMAGES, totals
    assert all(count <= IMAGES for count in totals.values()), totals
