"""Per-image series: each image lands in its own protocol/mode series, exemplar included."""

from __future__ import annotations

from prometheus_client.openmetrics.exposition import generate_latest

from imgbench.observe.metrics import ReceiverMetrics, TransmitterMetrics

WS = {"protocol": "websocket", "mode": "binary", "direction": "upload"}
GRPC = {"protocol": "grpc", "mode": "unary", "direction": "upload"}
TRACE = "0123456789abcdef0123456789abcdef"


def test_images_received_count_per_series_with_their_trace_as_exemplar() -> None:
    metrics = ReceiverMetrics()
    value = metrics.registry.get_sample_value
    for _ in range(3):  # the second and third reuse the series looked up by the first
        metrics.image_received("websocket", "binary", 0.002, 1000, TRACE)
    metrics.image_received("grpc", "unary", 0.5, 7, TRACE)
    assert value("imgbench_images_received_total", WS) == 3
    assert value("imgbench_bytes_received_total", WS) == 3000
    assert value("imgbench_transmission_seconds_count", WS) == 3
    assert value("imgbench_transmission_seconds_sum", WS) == 0.006
    assert value("imgbench_images_received_total", GRPC) == 1
    assert value("imgbench_bytes_received_total", GRPC) == 7
    text = generate_latest(metrics.registry).decode()
    assert f'# {{trace_id="{TRACE}"}} 0.5' in text


def test_images_sent_count_per_series_with_their_trace_as_exemplar() -> None:
    metrics = TransmitterMetrics()
    value = metrics.registry.get_sample_value
    metrics.image_sent("websocket", "binary", 0.004, TRACE)
    metrics.image_sent("websocket", "binary", 0.006, TRACE)
    metrics.image_sent("grpc", "unary", 0.25, TRACE)
    assert value("imgbench_images_sent_total", WS) == 2
    assert value("imgbench_round_trip_seconds_count", WS) == 2
    assert value("imgbench_round_trip_seconds_sum", WS) == 0.01
    assert value("imgbench_images_sent_total", GRPC) == 1
    assert f'# {{trace_id="{TRACE}"}} 0.25' in generate_latest(metrics.registry).decode()
