"""Metrics, traces and logs after a real run on both protocols (issue: observability)."""

from __future__ import annotations

import io
import json
import math
import re

import pytest
from opentelemetry.trace import SpanKind
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from imgbench.measure.results import compute_figures
from imgbench.observe.logs import configure_logging
from imgbench.observe.metrics import STATS
from imgbench.runtime.http import request
from imgbench.wire import names
from transmitter.image import load_image
from transmitter.senders import make_sender

from helpers.services import LiveReceiver, make_transmitter

PROTOCOLS = [("websocket", "binary"), ("grpc", "unary"), ("grpc", "stream")]


async def scrape_openmetrics(port: int) -> dict[str, list]:  # type: ignore[type-arg]
    status, headers, body = await request(
        "127.0.0.1", port, "GET", "/metrics",
        headers={"Accept": "application/openmetrics-text; version=1.0.0"},
    )  # fmt: skip
    assert status == 200
    assert headers["content-type"].startswith("application/openmetrics-text")
    samples: dict[str, list] = {}  # type: ignore[type-arg]
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def value(samples: dict[str, list], name: str, **labels: str) -> float:  # type: ignore[type-arg]
    matches = [s for s in samples[name] if all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(matches) == 1, (name, labels, matches)
    return float(matches[0].value)


async def test_series_exist_at_zero_before_the_first_image(live_receiver: LiveReceiver) -> None:
    samples = await scrape_openmetrics(live_receiver.server.ports["http"])
    for protocol, mode in [*PROTOCOLS, ("websocket", "json")]:
        assert value(samples, "imgbench_images_received_total", protocol=protocol, mode=mode) == 0
        assert (
            value(samples, "imgbench_transmission_seconds_count", protocol=protocol, mode=mode) == 0
        )
    assert (
        value(samples, "imgbench_rejected_messages_total", protocol="grpc", reason="malformed") == 0
    )
    # The default process collector stays on: CPU and memory of the service.
    assert value(samples, "process_cpu_seconds_total") > 0
    assert value(samples, "process_resident_memory_bytes") > 0


async def test_metrics_match_the_run_figures(live_receiver: LiveReceiver) -> None:
    settings = live_receiver.transmitter_settings(images=5, warmup=1, grpc_mode="unary")
    tx = make_transmitter(settings)
    image = load_image(None)
    runs = {}
    for protocol, mode in PROTOCOLS:
        s = settings if mode != "stream" else live_receiver.transmitter_settings(
            images=5, warmup=1, grpc_mode="stream"
        )  # fmt: skip
        runs[(protocol, mode)] = await tx.harness.run_protocol(
            make_sender(protocol, s, None), image, "metrics-run"
        )
    samples = await scrape_openmetrics(live_receiver.server.ports["http"])

    for (protocol, mode), run in runs.items():
        labels = {"protocol": protocol, "mode": mode}
        figures = compute_figures(run.samples)
        assert value(samples, "imgbench_transmission_seconds_count", **labels) == 5
        assert value(samples, "imgbench_images_received_total", **labels) == 5
        assert value(samples, "imgbench_warmup_images_received_total", **labels) == 1
        assert value(samples, "imgbench_bytes_received_total", **labels) == 5 * image.size
        assert math.isclose(
            value(samples, "imgbench_transmission_seconds_sum", **labels),
            figures.cumulative_transmission_s,
            rel_tol=1e-9,
        )
        # Exemplars carry the trace id of the receiver's span for that image.
        exemplars = [
            s.exemplar
            for s in samples["imgbench_transmission_seconds_bucket"]
            if s.labels["protocol"] == protocol and s.labels["mode"] == mode and s.exemplar
        ]
        assert exemplars
        receiver_trace_ids = {
            format(span.context.trace_id, "032x")
            for span in live_receiver.spans.get_finished_spans()
            if span.name == "receive image"
        }
        for exemplar in exemplars:
            assert re.fullmatch(r"[0-9a-f]{32}", exemplar.labels["trace_id"])
            assert exemplar.labels["trace_id"] in receiver_trace_ids
        # Last-run gauges equal the figures the terminal table shows.
        assert value(samples, "imgbench_run_images", **labels) == 5
        assert math.isclose(
            value(samples, "imgbench_run_cumulative_transmission_seconds", **labels),
            figures.cumulative_transmission_s,
        )
        assert math.isclose(
            value(samples, "imgbench_run_total_transfer_seconds", **labels),
            figures.total_transfer_s,
        )
        for stat in STATS:
            assert math.isclose(
                value(samples, "imgbench_run_transmission_seconds", stat=stat, **labels),
                getattr(figures.transmission, stat),
            )
        per_image = {
            int(s.labels["sequence"]): s.value
            for s in samples["imgbench_run_image_transmission_seconds"]
            if s.labels["protocol"] == protocol and s.labels["mode"] == mode
        }
        assert per_image == pytest.approx({x.sequence: x.transmission_s for x in run.samples})
        assert value(samples, "imgbench_run_completed_timestamp_seconds", **labels) > 1e9

    # The transmitter's own metrics.
    tx_samples = {
        s.name: s
        for family in tx.metrics.registry.collect()
        for s in family.samples
        if s.labels.get("protocol") == "grpc" and s.labels.get("mode") == "stream"
    }
    assert tx_samples["imgbench_images_sent_total"].value == 5
    assert tx_samples["imgbench_round_trip_seconds_count"].value == 5


@pytest.mark.parametrize(("protocol", "mode"), PROTOCOLS)
async def test_receiver_span_is_child_of_transmitter_send_span(
    live_receiver: LiveReceiver, protocol: str, mode: str
) -> None:
    settings = live_receiver.transmitter_settings(
        images=3, warmup=1, grpc_mode=mode if protocol == "grpc" else "unary"
    )
    tx = make_transmitter(settings)
    # The transmitter's tracer provider also instruments gRPC calls, as in production.
    await tx.harness.run_protocol(
        make_sender(protocol, settings, tx.tracing), load_image(None), f"trace-{protocol}-{mode}"
    )
    tx.tracing.force_flush()
    sent = {
        span.context.span_id: span
        for span in tx.spans.get_finished_spans()
        if span.name == "send image"
    }
    received = [
        span
        for span in live_receiver.spans.get_finished_spans()
        if span.name == "receive image"
        and span.attributes is not None
        and span.attributes["imgbench.run_id"] == f"trace-{protocol}-{mode}"
    ]
    assert len(sent) == len(received) == 4  # 1 warm-up + 3 measured
    run_spans = [s for s in tx.spans.get_finished_spans() if s.name == f"{protocol} run"]
    assert len(run_spans) == 1
    run = run_spans[0]
    assert run.kind is SpanKind.INTERNAL
    # One trace per image: each send span is a root, linked to the run span's trace.
    assert len({s.context.trace_id for s in sent.values()}) == 4
    for span in received:
        assert span.parent is not None and span.parent.is_remote
        assert span.kind is SpanKind.SERVER
        parent = sent[span.parent.span_id]
        assert parent.kind is SpanKind.CLIENT
        assert span.context.trace_id == parent.context.trace_id != run.context.trace_id
        assert parent.parent is None
        assert [link.context.span_id for link in parent.links] == [run.context.span_id]
        assert parent.links[0].context.trace_id == run.context.trace_id
        for s in (parent, span):
            assert s.attributes is not None
            expected_name = "http" if protocol == "grpc" else "websocket"
            assert s.attributes["network.protocol.name"] == expected_name
            assert s.attributes["server.port"] == live_receiver.server.ports[protocol]
            assert s.attributes.get("rpc.system") == ("grpc" if protocol == "grpc" else None)
        assert parent.attributes is not None
        assert parent.attributes["server.address"] == "127.0.0.1"
        assert parent.attributes is not None
        assert span.attributes is not None
        assert parent.attributes["imgbench.sequence"] == span.attributes["imgbench.sequence"]


async def test_log_lines_about_an_image_carry_its_trace_ids(live_receiver: LiveReceiver) -> None:
    stream = io.StringIO()
    configure_logging("json", "debug", stream=stream)
    try:
        settings = live_receiver.transmitter_settings(images=2, warmup=0)
        tx = make_transmitter(settings)
        await tx.harness.run_protocol(
            make_sender("websocket", settings, None), load_image(None), "logs-run"
        )
    finally:
        configure_logging("console", "warning")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    image_lines = [
        line for line in lines if line.get("event") in ("image received", "image acknowledged")
    ]
    assert len(image_lines) == 4
    spans = {format(s.context.span_id, "016x"): s for s in live_receiver.spans.get_finished_spans()}
    spans.update({format(s.context.span_id, "016x"): s for s in tx.spans.get_finished_spans()})
    for line in image_lines:
        for key in ("protocol", "run_id", "sequence", "trace_id", "span_id"):
            assert key in line, (key, line)
        assert line["run_id"] == "logs-run"
        assert format(spans[line["span_id"]].context.trace_id, "032x") == line["trace_id"]
    # One canonical line per completed run, on each side, with the three figures.
    completed = [line for line in lines if line.get("event") == "run completed"]
    assert len(completed) == 2
    for line in completed:
        for key in ("total_transfer_s", "cumulative_transmission_s", "median_transmission_s"):
            assert key in line
    # The transmitter's run-level lines carry the run span's trace id; its image lines
    # carry their own image trace and name the run's trace as run_trace_id.
    (run_span,) = [s for s in tx.spans.get_finished_spans() if s.name == "websocket run"]
    run_trace = format(run_span.context.trace_id, "032x")
    (tx_completed,) = [line for line in completed if line["logger"] == "transmitter"]
    assert tx_completed["trace_id"] == run_trace
    # The receiver's run line too: the run's context came with the WebSocket handshake.
    (rx_completed,) = [line for line in completed if line["logger"] == "receiver"]
    assert rx_completed["trace_id"] == run_trace
    acked = [line for line in image_lines if line["event"] == "image acknowledged"]
    assert all(line["run_trace_id"] == run_trace != line["trace_id"] for line in acked)


@pytest.mark.parametrize("instrumented", [False, True])
async def test_grpc_rpc_spans_only_when_instrumentation_is_on(instrumented: bool) -> None:
    """The RPC spans of opentelemetry-instrumentation-grpc are opt-in (they cost time in
    the timed window, with no WebSocket equivalent); the per-image trace works either way."""

    from helpers.services import start_receiver

    receiver = await start_receiver(grpc_instrumentation=instrumented)
    try:
        settings = receiver.transmitter_settings(
            images=2, warmup=0, grpc_instrumentation=instrumented
        )
        tx = make_transmitter(settings)
        await tx.harness.run_protocol(
            make_sender("grpc", settings, tx.tracing), load_image(None), "rpc-spans"
        )
        tx.tracing.force_flush()
    finally:
        await receiver.server.stop(grace=1.0)
    rpc_name = names.SEND
    sends = {s.context.trace_id for s in tx.spans.get_finished_spans() if s.name == "send image"}
    # Clock probes also travel as Send calls, in the run's trace: count the images' calls.
    client_rpc = [
        s
        for s in tx.spans.get_finished_spans()
        if s.name == rpc_name and s.context.trace_id in sends
    ]
    server_rpc = [
        s
        for s in receiver.spans.get_finished_spans()
        if s.name == rpc_name and s.context.trace_id in sends
    ]
    assert (len(client_rpc), len(server_rpc)) == ((2, 2) if instrumented else (0, 0))
    if not instrumented:
        assert not [s for s in tx.spans.get_finished_spans() if s.name == rpc_name]
    receives = [s for s in receiver.spans.get_finished_spans() if s.name == "receive image"]
    assert len(receives) == 2 and {s.context.trace_id for s in receives} == sends


@pytest.mark.parametrize("protocol", ["websocket", "grpc"])
async def test_push_mode_images_are_producer_and_consumer_spans(
    live_receiver: LiveReceiver, protocol: str
) -> None:
    """In push mode the transmitter serves and the receiver subscribes: the image spans
    are PRODUCER -> CONSUMER (not CLIENT -> SERVER), still one trace per image."""
    settings = live_receiver.transmitter_settings(images=2, warmup=0, direction="push")
    tx = make_transmitter(settings)
    await tx.harness.run_protocol(
        make_sender(protocol, settings, None), load_image(None), f"push-spans-{protocol}"
    )
    tx.tracing.force_flush()
    sent = {s.context.span_id: s for s in tx.spans.get_finished_spans() if s.name == "send image"}
    received = [
        s
        for s in live_receiver.spans.get_finished_spans()
        if s.name == "receive image"
        and s.attributes is not None
        and s.attributes["imgbench.run_id"] == f"push-spans-{protocol}"
    ]
    assert len(sent) == len(received) == 2
    for span in received:
        assert span.parent is not None
        parent = sent[span.parent.span_id]
        assert (parent.kind, span.kind) == (SpanKind.PRODUCER, SpanKind.CONSUMER)
        assert span.context.trace_id == parent.context.trace_id
        assert parent.attributes is not None and span.attributes is not None
        assert "server.port" not in span.attributes  # the receiver is the client here
        if protocol == "grpc":
            assert parent.attributes["rpc.service"] == names.PUSH_SERVICE
            assert parent.attributes["rpc.method"] == names.SUBSCRIBE_METHOD
