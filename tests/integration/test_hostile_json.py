"""Hostile JSON on /v1/images/json: an error Ack and a counter, nothing recorded."""

from __future__ import annotations

import base64
import json
import time

import pytest
from websockets.asyncio.client import connect

from imgbench import wire
from transmitter.image import Image
from transmitter.senders import make_sender

from helpers.services import LiveReceiver, make_transmitter


def _message(**overrides: object) -> str:
    fields: dict[str, object] = {
        "run_id": "hostile", "protocol": "websocket", "mode": "json", "sequence": 0,
        "total": 2, "send_time_ns": time.monotonic_ns(), "clock": wire.Clock.CLOCK_MONOTONIC,
        "content_type": "image/png", "sha256": wire.digest(b"p").hex(), "traceparent": "",
        "warmup": False, "scheduled_time_ns": 0, "repetition": 0,
        "data": base64.b64encode(b"p").decode(),
    }  # fmt: skip
    fields.update(overrides)
    return json.dumps(fields)


CASES = {
    "deep_nesting": ("[" * 100_000 + "]" * 100_000, "malformed"),
    "deep_inside_object": (
        _message()[:-1] + ', "x": ' + "[" * 50_000 + "]" * 50_000 + "}", "malformed"
    ),
    "warmup_sequence_2_40": (_message(warmup=True, sequence=2**40), "invalid_field"),
    "send_time_2_70": (_message(send_time_ns=2**70), "invalid_field"),
    "scheduled_2_64": (_message(scheduled_time_ns=2**64), "invalid_field"),
    "repetition_2_33": (_message(repetition=2**33), "invalid_field"),
    "huge_int_literal": (_message()[:-1] + ', "total": ' + "9" * 5000 + "}", "malformed"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
async def test_hostile_json_is_refused_counted_and_not_recorded(
    live_receiver: LiveReceiver, case: str
) -> None:
    text, reason = CASES[case]
    port = live_receiver.server.ports["websocket"]
    async with connect(f"ws://127.0.0.1:{port}/v1/images/json", proxy=None) as ws:
        await ws.send(text)
        ack = wire.decode_ack(await ws.recv(decode=False))
        assert ack.error.startswith(reason), ack.error
        # The connection stays open and serves a good message afterwards.
        await ws.send(_message(run_id="good-after", total=1))
        assert wire.decode_ack(await ws.recv(decode=False)).error == ""
    value = live_receiver.metrics.registry.get_sample_value(
        "imgbench_rejected_messages_total", {"protocol": "websocket", "reason": reason}
    )
    assert value == 1
    assert "hostile" not in live_receiver.server.core.run_ids()
    # A legitimate run right after succeeds.
    settings = live_receiver.transmitter_settings(images=2, warmup=0, ws_mode="json")
    small = Image("small", b"s" * 1000, wire.digest(b"s" * 1000), "image/png")
    run = await make_transmitter(settings).harness.run_protocol(
        make_sender("websocket", settings, None), small, f"after-{case.replace('_', '-')}"
    )
    assert len(run.samples) == 2
