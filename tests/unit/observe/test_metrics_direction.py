"""The bounded direction label: a function of the mode, every series there from the start."""

from __future__ import annotations

from imgbench.measure.results import Sample, compute_figures
from imgbench.observe.metrics import (
    SERIES_LABELS,
    SUBSCRIPTION_REFUSALS,
    ReceiverMetrics,
    TransmitterMetrics,
    labels_of,
)
from imgbench.wire import MODES


def test_direction_follows_the_mode_and_stays_bounded() -> None:
    assert labels_of("grpc", "stream") == ("grpc", "stream", "upload")
    assert labels_of("websocket", "push") == ("websocket", "push", "push")
    assert {d for _, _, d in SERIES_LABELS} == {"upload", "push"}
    # Every upload mode plus one push series per protocol, nothing else.
    uploads = sum(len(m) for m in MODES.values())
    assert len(SERIES_LABELS) == uploads + len(MODES)


def test_push_series_exist_at_zero_before_the_first_push() -> None:
    receiver, transmitter = ReceiverMetrics(), TransmitterMetrics()
    for protocol in MODES:
        labels = {"protocol": protocol, "mode": "push", "direction": "push"}
        assert receiver.registry.get_sample_value("imgbench_images_received_total", labels) == 0
        assert transmitter.registry.get_sample_value("imgbench_images_sent_total", labels) == 0
    for reason in SUBSCRIPTION_REFUSALS:
        value = receiver.registry.get_sample_value(
            "imgbench_subscription_refusals_total", {"reason": reason}
        )
        assert value == 0


def test_last_run_gauges_of_push_and_upload_do_not_overwrite_each_other() -> None:
    metrics = ReceiverMetrics()
    fast = compute_figures([Sample(0, 0, 0, 1_000_000, 2_000_000, 10, 20, True)])
    slow = compute_figures([Sample(0, 0, 0, 5_000_000, 6_000_000, 10, 20, True)])
    metrics.run_completed("websocket", "binary", slow, [(0, 0.005)])
    metrics.run_completed("websocket", "push", fast, [(0, 0.001)])
    get = metrics.registry.get_sample_value
    p50 = "imgbench_run_transmission_seconds"
    upload = {"protocol": "websocket", "mode": "binary", "direction": "upload", "stat": "p50"}
    push = {"protocol": "websocket", "mode": "push", "direction": "push", "stat": "p50"}
    assert get(p50, upload) == 0.005
    assert get(p50, push) == 0.001
