"""Spans reach a real OTLP collector over grpc and http/protobuf (issue 13, section 3).

The collector is rotel (PyPI ``rotel``, a Rust OTLP collector shipped as a binary
in the wheel). With ``--exporter blackhole --debug-log traces
--debug-log-verbosity detailed`` it prints every span it received (resource
attributes, trace id, parent, name, kind, attributes) on stdout, which is what
these tests read: it is good enough to assert on what actually crossed the wire.
A real ``imgbench compare`` (receiver subprocess and transmitter) exports to it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from helpers.external_tools import tools_required

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def rotel_binary() -> str:
    """Path of the rotel collector binary; skip (or fail under CI) when missing."""
    spec = importlib.util.find_spec("rotel")
    if spec is not None and spec.origin is not None:
        binary = Path(spec.origin).parent / "rotel-agent"
        if binary.is_file() and os.access(binary, os.X_OK):
            return str(binary)
    message = "rotel (OTLP collector) not installed (pip install -e '.[test]')"
    if tools_required():
        pytest.fail(f"{message}; IMGBENCH_REQUIRE_TOOLS=1 requires it", pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise AssertionError(f"collector not listening on {port} after {timeout} s")


@dataclass
class Span:
    resource: dict[str, str]
    trace_id: str = ""
    parent_id: str = ""
    span_id: str = ""
    name: str = ""
    kind: str = ""
    attributes: dict[str, str] = field(default_factory=dict)


def parse_spans(text: str) -> list[Span]:
    """Spans from rotel's detailed debug output (one block per ResourceSpans)."""
    spans: list[Span] = []
    resource: dict[str, str] = {}
    section = ""
    current: Span | None = None
    for raw in ANSI.sub("", text).splitlines():
        line = raw.strip()
        if line.startswith("ResourceSpans #"):
            resource, section, current = {}, "resource", None
        elif line.startswith("Resource attributes:"):
            section = "resource"
        elif line.startswith("Span #"):
            current = Span(resource=resource)
            spans.append(current)
            section = "span"
        elif line.startswith("Attributes:") and current is not None:
            section = "attributes"
        elif line.startswith("-> "):
            key, _, value = line[3:].partition(": ")
            value = re.sub(r"^\w+\((.*)\)$", r"\1", value)
            if section == "resource":
                resource[key] = value
            elif section == "attributes" and current is not None:
                current.attributes[key] = value
        elif current is not None and ":" in line:
            key, _, value = (part.strip() for part in line.partition(":"))
            attr = {
                "Trace ID": "trace_id",
                "Parent ID": "parent_id",
                "ID": "span_id",
                "Name": "name",
                "Kind": "kind",
            }.get(key)
            if attr is not None:
                setattr(current, attr, value)
    return spans


@dataclass
class Collector:
    grpc_port: int
    http_port: int
    output: Path

    def spans(self) -> list[Span]:
        return parse_spans(self.output.read_text(errors="replace"))


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[Collector]:
    binary = rotel_binary()
    grpc_port, http_port = free_port(), free_port()
    output = tmp_path / "rotel.out"
    with output.open("wb") as out:
        proc = subprocess.Popen(
            [
                binary, "start",
                "--exporter", "blackhole",
                "--debug-log", "traces",
                "--debug-log-verbosity", "detailed",
                "--otlp-grpc-endpoint", f"127.0.0.1:{grpc_port}",
                "--otlp-http-endpoint", f"127.0.0.1:{http_port}",
                "--pid-file", str(tmp_path / "rotel.pid"),
                "--log-file", str(tmp_path / "rotel.log"),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_listening(grpc_port)
        wait_listening(http_port)
        yield Collector(grpc_port, http_port, output)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def compare(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A real ``imgbench compare`` (2 images per protocol, no delay) with ``env`` added."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "IMGBENCH_"))}
    return subprocess.run(
        [
            sys.executable, "-c", "import sys; from imgbench.cli import main; sys.exit(main())",
            "compare",
            "--images", "2", "--delay", "0", "--warmup", "1",
            "--output", str(tmp_path / "results"), "--log-format", "json",
        ],
        env={**base, "OTEL_BSP_SCHEDULE_DELAY": "100", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip


def wait_for_spans(collector: Collector, expected: int, timeout: float = 10.0) -> list[Span]:
    deadline = time.monotonic() + timeout
    while True:
        spans = collector.spans()
        if len(spans) >= expected or time.monotonic() > deadline:
            return spans
        time.sleep(0.1)


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_spans_of_both_services_arrive_at_a_real_collector(
    collector: Collector, tmp_path: Path, protocol: str
) -> None:
    port = collector.grpc_port if protocol == "grpc" else collector.http_port
    env = {
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
    }
    if protocol == "grpc":
        # The specification ranks OTEL_RESOURCE_ATTRIBUTES over the built-in name.
        env["OTEL_RESOURCE_ATTRIBUTES"] = "service.name=bench-from-env,deployment.environment=ci"
    done = compare(tmp_path, env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "could not be exported" not in done.stderr
    # Per protocol: 1 run span, 3 send spans (1 warm-up + 2), 3 receive spans.
    spans = wait_for_spans(collector, 14)
    names = [s.name for s in spans]
    assert names.count("websocket run") == names.count("grpc run") == 1, names
    sends = {s.span_id: s for s in spans if s.name == "send image"}
    receives = [s for s in spans if s.name == "receive image"]
    assert len(sends) == len(receives) == 6, names
    for receive in receives:
        send = sends[receive.parent_id]  # the receiver's span is the send span's child
        assert receive.trace_id == send.trace_id
        assert send.parent_id == ""  # each image is a trace of its own
        assert (send.kind, receive.kind) == ("SPAN_KIND_CLIENT", "SPAN_KIND_SERVER")
        proto = send.attributes["imgbench.protocol"]
        assert send.attributes["network.protocol.name"] == (
            "http" if proto == "grpc" else "websocket"
        )
        assert send.attributes["server.address"] == "127.0.0.1"
        assert int(send.attributes["server.port"]) > 0
        if proto == "grpc":
            assert receive.attributes["rpc.system"] == "grpc"
            assert receive.attributes["rpc.method"] == "Send"
    services = {s.resource.get("service.name") for s in spans}
    if protocol == "grpc":
        assert services == {"bench-from-env"}
        assert {s.resource.get("deployment.environment") for s in spans} == {"ci"}
    else:
        assert services == {"imgbench-receiver", "imgbench-transmitter"}
    assert all(s.resource.get("service.version") for s in spans)


def test_an_unreachable_collector_is_reported_once_and_the_run_still_succeeds(
    tmp_path: Path,
) -> None:
    rotel_binary()  # same tool requirement as its sibling: this checks the exporter path
    done = compare(
        tmp_path,
        {
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{free_port()}",
            "OTEL_EXPORTER_OTLP_TIMEOUT": "1",
            "OTEL_BSP_SCHEDULE_DELAY": "50",
        },
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # The transmitter's stderr: one clear line at the first failure, one summary at exit,
    # none of the exporter's per-batch lines.
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    first = [line for line in lines if "could not be exported" in line["event"]]
    lost = [line for line in lines if line["event"] == "tracing: spans lost"]
    assert len(first) == 1 and len(lost) == 1, done.stderr[-3000:]
    assert first[0]["reason"] and first[0]["protocol"] == "http/protobuf"
    # Several batches failed, yet the exporter's own per-batch lines were kept out.
    assert lost[0]["failed_batches"] >= 2 and lost[0]["exported_spans"] == 0
    assert not [line for line in lines if line.get("logger", "").startswith("opentelemetry")]
