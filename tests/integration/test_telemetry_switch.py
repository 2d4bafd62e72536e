"""IMGBENCH_TELEMETRY=off: no spans and no per-image metrics, same figures and acks."""

from __future__ import annotations

import pytest

from imgbench.config.resolve import receiver_settings, transmitter_settings
from imgbench.runtime.http import get_json
from transmitter.image import load_image
from transmitter.senders import make_sender

from helpers.services import make_transmitter, start_receiver


def test_the_switch_is_read_from_the_environment() -> None:
    assert receiver_settings(environ={}).telemetry is True
    assert receiver_settings(environ={"IMGBENCH_TELEMETRY": "off"}).telemetry is False
    assert transmitter_settings(environ={"IMGBENCH_TELEMETRY": "off"}).observe.telemetry is False


@pytest.mark.parametrize(("protocol", "mode"), [("websocket", "binary"), ("grpc", "stream")])
async def test_telemetry_off_creates_no_spans_and_observes_no_metrics(
    protocol: str, mode: str
) -> None:
    receiver = await start_receiver(telemetry=False)
    try:
        settings = receiver.transmitter_settings(images=3, telemetry=False, grpc_mode="stream")
        tx = make_transmitter(settings)
        run = await tx.harness.run_protocol(
            make_sender(protocol, settings, tx.tracing), load_image(None), "run-off"
        )
        tx.tracing.force_flush()
        receiver.server.tracer_provider.force_flush()

        assert [s.sequence for s in run.samples] == [0, 1, 2]
        assert all(s.checksum_ok for s in run.samples)
        assert tx.spans.get_finished_spans() == ()
        assert receiver.spans.get_finished_spans() == ()
        assert receiver.metrics.images.labels(protocol, mode, "upload")._value.get() == 0
        assert tx.metrics.sent.labels(protocol, mode, "upload")._value.get() == 0
        # The run record (and so /runs) is kept: it is the result, not telemetry.
        status, body = await get_json("127.0.0.1", receiver.server.ports["http"], "/runs/run-off")
        assert status == 200
        assert body["protocols"][0]["complete"] is True
    finally:
        await receiver.server.stop(grace=1.0)
