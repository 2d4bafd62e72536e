"""Push mode over real loopback sockets: the transmitter serves, the receiver subscribes.

Same bytes, same checksum, same figures and the same refusals as the uploads;
the receiver handles each pushed message through its one core.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from imgbench import wire
from imgbench.errors import ReceiverUnreachable, RunError
from imgbench.measure.results import Comparison, compute_figures
from imgbench.runtime.http import get_json, request
from imgbench.wire import digest
from imgbench.wire.names import PUSH_MODE
from transmitter.image import Image, load_image
from transmitter.push import PushGrpcSender, PushWebSocketSender, make_push_sender
from transmitter.senders import make_sender

from helpers.services import LiveReceiver, make_transmitter, start_receiver

PROTOCOLS = ("websocket", "grpc")


def _value(registry: object, name: str, labels: dict[str, str]) -> float:
    from prometheus_client import CollectorRegistry

    assert isinstance(registry, CollectorRegistry)
    value = registry.get_sample_value(name, labels)
    assert value is not None, (name, labels)
    return value


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_push_delivers_every_image_intact_through_the_receiver_core(
    live_receiver: LiveReceiver, protocol: str
) -> None:
    settings = live_receiver.transmitter_settings(images=4, delay=0.02, direction="push")
    tx = make_transmitter(settings)
    image = load_image(None)
    sender = make_sender(protocol, settings, None)
    assert isinstance(sender, PushWebSocketSender | PushGrpcSender)
    run = await tx.harness.run_protocol(sender, image, f"push-{protocol}")

    assert (run.protocol, run.mode, run.direction) == (protocol, PUSH_MODE, "push")
    assert [s.sequence for s in run.samples] == [0, 1, 2, 3]
    assert len(run.warmup_samples) == 1
    assert all(s.checksum_ok and s.image_bytes == image.size for s in run.samples)
    for s in run.samples:
        # Send start on the transmitter, receive-complete on the receiver, ack after.
        assert s.send_ns < s.receive_ns < s.ack_ns
    figures = compute_figures(run.samples)
    assert figures.total_transfer_s >= 3 * 0.02

    # The receiver recorded the run through its core, as for an upload.
    status, body = await get_json(
        "127.0.0.1", live_receiver.server.ports["http"], f"/runs/push-{protocol}"
    )
    assert status == 200
    (record,) = body["protocols"]
    assert (record["protocol"], record["mode"], record["received"]) == (protocol, PUSH_MODE, 4)
    assert record["complete"] is True and record["integrity_failures"] == 0
    assert [r["receive_ns"] for r in record["samples"]] == [s.receive_ns for s in run.samples]
    assert math.isclose(
        record["figures"]["cumulative_transmission_s"], figures.cumulative_transmission_s
    )

    # Metrics carry the bounded direction label on both sides.
    labels = {"protocol": protocol, "mode": PUSH_MODE, "direction": "push"}
    registry = live_receiver.metrics.registry
    assert _value(registry, "imgbench_images_received_total", labels) == 4
    assert _value(registry, "imgbench_bytes_received_total", labels) == 4 * image.size
    assert _value(registry, "imgbench_transmission_seconds_count", labels) == 4
    assert _value(tx.metrics.registry, "imgbench_images_sent_total", labels) == 4
    upload = {"protocol": protocol, "mode": settings.workload.ws_mode if protocol == "websocket"
              else settings.workload.grpc_mode, "direction": "upload"}  # fmt: skip
    assert _value(registry, "imgbench_images_received_total", upload) == 0
    assert _value(registry, "imgbench_disconnects_total", {"protocol": protocol}) == 0


async def test_push_and_upload_carry_identical_image_bytes(live_receiver: LiveReceiver) -> None:
    """Same ImageMessage on both directions and protocols: only the label strings differ."""
    image = load_image(None)
    sizes = {}
    for direction in ("upload", "push"):
        settings = live_receiver.transmitter_settings(
            images=1, warmup=0, direction=direction, grpc_mode="stream"
        )
        tx = make_transmitter(settings)
        for protocol in PROTOCOLS:
            run = await tx.harness.run_protocol(
                make_sender(protocol, settings, None), image, f"same-{direction[0]}"
            )
            sizes[protocol, direction] = run.message_bytes
    assert sizes["websocket", "push"] - sizes["grpc", "push"] == len("websocket") - len("grpc")
    assert sizes["grpc", "push"] - sizes["grpc", "upload"] == len("push") - len("stream")
    assert sizes["websocket", "push"] - image.size < 200


async def test_push_carries_eight_mib_with_the_default_limits(live_receiver: LiveReceiver) -> None:
    data = os.urandom(8 * 1024 * 1024)
    image = Image("random 8 MiB", data, digest(data), "application/octet-stream")
    settings = live_receiver.transmitter_settings(images=2, warmup=0, direction="push")
    tx = make_transmitter(settings)
    for protocol in PROTOCOLS:
        run = await tx.harness.run_protocol(make_sender(protocol, settings, None), image, "big")
        assert [s.checksum_ok for s in run.samples] == [True, True]
        assert run.samples[0].image_bytes == len(data)


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_refused_pushed_messages_are_answered_and_counted(
    live_receiver: LiveReceiver, protocol: str
) -> None:
    """A malformed message and one with the wrong labels: error Acks, counted, no crash."""
    settings = live_receiver.transmitter_settings(direction="push")
    sender = make_push_sender(protocol, settings, None)
    await sender.connect(_deadline(5), "")
    try:
        bad = wire.decode_ack(await sender.send(b"\xff\xfe not protobuf"))
        assert bad.error.startswith("malformed:")
        meta = wire.ImageMeta(
            run_id="wrong", repetition=0, protocol=protocol, mode="binary", sequence=0,
            total=1, send_time_ns=1, clock=wire.Clock.CLOCK_MONOTONIC,
            content_type="image/png", sha256=digest(b"x"), traceparent="", warmup=False,
        )  # fmt: skip
        wrong = wire.decode_ack(await sender.send(wire.encode_image(meta, b"x")))
        assert wrong.error.startswith("invalid_field:")
    finally:
        await sender.close()
    registry = live_receiver.metrics.registry
    for reason in ("malformed", "invalid_field"):
        assert (
            _value(
                registry,
                "imgbench_rejected_messages_total",
                {"protocol": protocol, "reason": reason},
            )
            == 1
        )
    # The connection stayed usable; nothing was recorded as an image.
    labels = {"protocol": protocol, "mode": PUSH_MODE, "direction": "push"}
    assert _value(registry, "imgbench_images_received_total", labels) == 0


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_pushed_message_above_the_receivers_limit_is_refused_and_counted(
    protocol: str,
) -> None:
    """The receiver (the client now) enforces its limit and counts the refusal."""
    receiver = await start_receiver(max_message_bytes=64 * 1024)
    try:
        data = os.urandom(200 * 1024)
        image = Image("200 KiB", data, digest(data), "application/octet-stream")
        # The transmitter's own limit is higher, so the message does go out.
        settings = receiver.transmitter_settings(
            images=1, warmup=0, direction="push", max_message_bytes=1024 * 1024, image_timeout=5
        )
        tx = make_transmitter(settings)
        with pytest.raises(RunError):
            await tx.harness.run_protocol(make_sender(protocol, settings, None), image, "over")
        assert (
            _value(
                receiver.metrics.registry,
                "imgbench_rejected_messages_total",
                {"protocol": protocol, "reason": "oversized"},
            )
            == 1
        )
    finally:
        await receiver.server.stop(grace=1.0)


async def test_bad_subscription_requests_are_refused_with_a_reason_and_counted(
    live_receiver: LiveReceiver,
) -> None:
    port = live_receiver.server.ports["http"]
    bodies = [
        b"not json",
        json.dumps({"protocol": "smtp", "target": "x:1"}).encode(),
        json.dumps({"protocol": "websocket", "target": "http://127.0.0.1:1/v1/push"}).encode(),
        json.dumps({"protocol": "websocket", "target": "ws://127.0.0.1:1/elsewhere"}).encode(),
        json.dumps({"protocol": "grpc", "target": "127.0.0.1:99999"}).encode(),
    ]
    for body in bodies:
        status, _, answer = await request("127.0.0.1", port, "POST", "/v1/subscriptions", body=body)
        assert status == 400, body
        assert json.loads(answer)["error"].startswith("invalid:")
    refusals = "imgbench_subscription_refusals_total"
    registry = live_receiver.metrics.registry
    assert _value(registry, refusals, {"reason": "invalid"}) == len(bodies)


async def test_busy_receiver_refuses_further_subscriptions() -> None:
    receiver = await start_receiver(max_subscriptions=1)
    try:
        settings = receiver.transmitter_settings(direction="push")
        first = make_push_sender("websocket", settings, None)
        await first.connect(_deadline(5), "")
        try:
            with pytest.raises(ReceiverUnreachable, match="HTTP 503"):
                await make_push_sender("grpc", settings, None).connect(_deadline(5), "")
        finally:
            await first.close()
        assert (
            _value(
                receiver.metrics.registry,
                "imgbench_subscription_refusals_total",
                {"reason": "busy"},
            )
            == 1
        )
    finally:
        await receiver.server.stop(grace=1.0)


async def test_a_subscriber_that_goes_away_mid_run_is_a_disconnect(
    live_receiver: LiveReceiver,
) -> None:
    """The transmitter ends the gRPC stream after 1 of 3 images: counted on the receiver."""
    settings = live_receiver.transmitter_settings(images=3, direction="push")
    sender = PushGrpcSender(settings, None)
    await sender.connect(_deadline(5), "")
    image = load_image(None)
    meta = wire.ImageMeta(
        run_id="cut", repetition=0, protocol="grpc", mode=PUSH_MODE, sequence=0, total=3,
        send_time_ns=_now(), clock=wire.Clock.CLOCK_MONOTONIC, content_type="image/png",
        sha256=image.sha256, traceparent="", warmup=False,
    )  # fmt: skip
    ack = wire.decode_ack(await sender.send(wire.encode_image(meta, image.data)))
    assert ack.checksum_ok and not ack.error
    await sender.close()
    registry = live_receiver.metrics.registry
    for _ in range(100):
        if registry.get_sample_value("imgbench_disconnects_total", {"protocol": "grpc"}):
            break
        await _sleep(0.02)
    assert _value(registry, "imgbench_disconnects_total", {"protocol": "grpc"}) == 1


def test_grpc_push_is_a_bidirectional_stream_on_the_pusher_service() -> None:
    from imgbench.v1 import imgbench_pb2_grpc

    assert hasattr(imgbench_pb2_grpc, "PusherStub")
    assert grpc  # the stubs exist for other languages; the services use raw bytes


def test_compare_direction_push_prints_both_protocols_and_a_verdict(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "imgbench.cli", "compare", "--direction", "push",
         "--images", "5", "--delay", "0", "--output", str(tmp_path)],
        capture_output=True, text=True, timeout=180, check=False,
        env={**os.environ, "COLUMNS": "120"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "websocket/push" in proc.stdout and "grpc/push" in proc.stdout
    verdicts = [
        line for line in proc.stdout.splitlines()
        if "websocket/push" in line and "grpc/push" in line
        # The report's verdict line; below 10 samples per group it says so instead of a ratio.
        and any(
            phrase in line
            for phrase in (
                "slower than",
                "faster than",
                "no significant difference",
                "too few samples for a verdict",
            )
        )
    ]  # fmt: skip
    assert len(verdicts) == 1, proc.stdout
    assert "direction=push" in proc.stdout
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    comparison = Comparison.load(run_dir / "results.json")
    assert comparison.settings["direction"] == "push"
    assert [(r.label, r.direction) for r in comparison.runs] == [
        ("websocket/push", "push"),
        ("grpc/push", "push"),
    ]
    for run in comparison.runs:
        assert compute_figures(run.samples).images == 5
        assert all(s.checksum_ok for s in run.samples)
    saved = json.loads((run_dir / "results.json").read_text())
    assert [r["direction"] for r in saved["runs"]] == ["push", "push"]


def _deadline(seconds: float) -> float:
    import time

    return time.monotonic() + seconds


def _now() -> int:
    import time

    return time.monotonic_ns()


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)
