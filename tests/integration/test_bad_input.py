"""Bad input gets a clear error and a counter; the receiver keeps serving."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError

from imgbench import wire
from imgbench.errors import ImageLost, IntegrityError, ReceiverUnreachable
from imgbench.wire import names
from transmitter.image import Image, load_image
from transmitter.senders import make_sender

from helpers.services import LiveReceiver, make_transmitter, start_receiver


def counter(receiver: LiveReceiver, name: str, **labels: str) -> float:
    value = receiver.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def meta(protocol: str = "websocket", mode: str = "binary", **kw: object) -> wire.ImageMeta:
    fields: dict[str, object] = dict(
        run_id="bad-1", protocol=protocol, mode=mode, sequence=0, total=1,
        send_time_ns=time.monotonic_ns(), clock=wire.Clock.CLOCK_MONOTONIC,
        content_type="image/png", sha256=wire.digest(b"payload"),
    )  # fmt: skip
    fields.update(kw)
    return wire.ImageMeta(**fields)  # type: ignore[arg-type]


async def assert_still_serving(receiver: LiveReceiver, protocol: str) -> None:
    settings = receiver.transmitter_settings(images=1, warmup=0)
    small = Image("small", b"s" * 1000, wire.digest(b"s" * 1000), "image/png")
    run = await make_transmitter(settings).harness.run_protocol(
        make_sender(protocol, settings, None), small, f"after-bad-{protocol}"
    )
    assert run.samples[0].checksum_ok


def ws_url(receiver: LiveReceiver, path: str = "/v1/images") -> str:
    return f"ws://127.0.0.1:{receiver.server.ports['websocket']}{path}"


async def test_websocket_text_frame_on_binary_endpoint(live_receiver: LiveReceiver) -> None:
    async with connect(ws_url(live_receiver), proxy=None) as ws:
        await ws.send("not binary")
        ack = wire.decode_ack(await ws.recv(decode=False))
    assert ack.error.startswith("wrong_frame_type")
    key = "imgbench_rejected_messages_total"
    assert counter(live_receiver, key, protocol="websocket", reason="wrong_frame_type") == 1
    await assert_still_serving(live_receiver, "websocket")


async def test_websocket_malformed_bytes(live_receiver: LiveReceiver) -> None:
    async with connect(ws_url(live_receiver), proxy=None) as ws:
        await ws.send(b"\xff\xff\xff\xff not protobuf")
        ack = wire.decode_ack(await ws.recv(decode=False))
        assert ack.error.startswith("malformed")
        # The same connection still accepts a good image afterwards.
        await ws.send(wire.encode_image(meta(), b"payload"))
        ack = wire.decode_ack(await ws.recv(decode=False))
    assert ack.error == "" and ack.checksum_ok
    key = "imgbench_rejected_messages_total"
    assert counter(live_receiver, key, protocol="websocket", reason="malformed") == 1


async def test_invalid_field_and_protocol_mismatch_are_refused(live_receiver: LiveReceiver) -> None:
    async with connect(ws_url(live_receiver), proxy=None) as ws:
        await ws.send(wire.encode_image(meta(protocol="grpc", mode="unary"), b"payload"))
        ack = wire.decode_ack(await ws.recv(decode=False))
    assert ack.error.startswith("invalid_field")
    key = "imgbench_rejected_messages_total"
    assert counter(live_receiver, key, protocol="websocket", reason="invalid_field") == 1


@pytest.mark.parametrize("protocol", ["websocket", "grpc"])
async def test_checksum_mismatch_is_counted_and_acknowledged_as_failed(
    live_receiver: LiveReceiver, protocol: str
) -> None:
    mode = "binary" if protocol == "websocket" else "unary"
    raw = wire.encode_image(meta(protocol, mode, sha256=wire.digest(b"other")), b"payload")
    if protocol == "websocket":
        async with connect(ws_url(live_receiver), proxy=None) as ws:
            await ws.send(raw)
            ack = wire.decode_ack(await ws.recv(decode=False))
    else:
        target = f"127.0.0.1:{live_receiver.server.ports['grpc']}"
        async with grpc.aio.insecure_channel(target) as channel:
            ack = wire.decode_ack(await channel.unary_unary(names.SEND, None, None)(raw))
    assert not ack.checksum_ok
    labels = {"protocol": protocol, "mode": mode, "direction": "upload"}
    assert counter(live_receiver, "imgbench_integrity_failures_total", **labels) == 1
    assert counter(live_receiver, "imgbench_images_received_total", **labels) == 0


async def test_websocket_oversized_message_is_refused_like_grpc() -> None:
    """Above the limit by up to the headroom: an error Ack (the connection stays), as
    gRPC answers RESOURCE_EXHAUSTED; far above: websockets closes with 1009. Both count."""
    receiver = await start_receiver(max_message_bytes=64 * 1024)
    try:
        async with connect(ws_url(receiver), proxy=None) as ws:
            await ws.send(wire.encode_image(meta(), b"x" * 100_000))
            ack = wire.decode_ack(await ws.recv(decode=False))
            assert ack.error.startswith("oversized"), ack.error
            await ws.send(wire.encode_image(meta(), b"x" * (64 * 1024 + 2 * 1024 * 1024)))
            with pytest.raises(ConnectionClosedError) as info:
                await ws.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == 1009
        await asyncio.sleep(0.1)
        key = "imgbench_rejected_messages_total"
        assert counter(receiver, key, protocol="websocket", reason="oversized") == 2
        await assert_still_serving(receiver, "websocket")
    finally:
        await receiver.server.stop(grace=1.0)


async def test_grpc_oversized_message_is_resource_exhausted_and_counted() -> None:
    receiver = await start_receiver(max_message_bytes=64 * 1024)
    try:
        target = f"127.0.0.1:{receiver.server.ports['grpc']}"
        raw = wire.encode_image(meta("grpc", "unary"), b"x" * 100_000)
        async with grpc.aio.insecure_channel(target) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await channel.unary_unary(names.SEND, None, None)(raw)
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        key = "imgbench_rejected_messages_total"
        assert counter(receiver, key, protocol="grpc", reason="oversized") == 1
        await assert_still_serving(receiver, "grpc")
    finally:
        await receiver.server.stop(grace=1.0)


async def test_grpc_malformed_is_invalid_argument(live_receiver: LiveReceiver) -> None:
    target = f"127.0.0.1:{live_receiver.server.ports['grpc']}"
    async with grpc.aio.insecure_channel(target) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await channel.unary_unary(names.SEND, None, None)(b"\xff\xfe junk")
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "malformed" in (info.value.details() or "")
    key = "imgbench_rejected_messages_total"
    assert counter(live_receiver, key, protocol="grpc", reason="malformed") == 1


async def test_grpc_stream_bad_message_gets_error_ack_and_stream_continues(
    live_receiver: LiveReceiver,
) -> None:
    target = f"127.0.0.1:{live_receiver.server.ports['grpc']}"
    good = wire.encode_image(meta("grpc", "stream"), b"payload")

    async def requests():  # type: ignore[no-untyped-def]
        yield b"\xff junk"
        yield good

    async with grpc.aio.insecure_channel(target) as channel:
        call = channel.stream_stream(names.SEND_STREAM, None, None)(requests())
        acks = [wire.decode_ack(raw) async for raw in call]
    assert acks[0].error.startswith("malformed")
    assert acks[1].error == "" and acks[1].checksum_ok


@pytest.mark.parametrize("protocol", ["websocket", "grpc"])
async def test_disconnect_mid_run_is_counted(live_receiver: LiveReceiver, protocol: str) -> None:
    if protocol == "websocket":
        ws = await connect(ws_url(live_receiver), proxy=None)
        await ws.send(wire.encode_image(meta(total=5), b"payload"))
        await ws.recv()
        # Drop the TCP connection without a closing handshake.
        ws.transport.abort()
    else:
        target = f"127.0.0.1:{live_receiver.server.ports['grpc']}"
        channel = grpc.aio.insecure_channel(target)
        queue: asyncio.Queue[bytes] = asyncio.Queue()

        async def requests():  # type: ignore[no-untyped-def]
            while True:
                yield await queue.get()

        call = channel.stream_stream(names.SEND_STREAM, None, None)(requests())
        queue.put_nowait(wire.encode_image(meta("grpc", "stream", total=5), b"payload"))
        await call.read()
        call.cancel()
        await channel.close(None)
    for _ in range(50):
        if counter(live_receiver, "imgbench_disconnects_total", protocol=protocol) >= 1:
            break
        await asyncio.sleep(0.05)
    assert counter(live_receiver, "imgbench_disconnects_total", protocol=protocol) == 1
    await assert_still_serving(live_receiver, protocol)


@pytest.mark.parametrize("protocol", ["websocket", "grpc"])
async def test_transmitter_fails_clearly_when_receiver_is_unreachable(protocol: str) -> None:
    receiver = await start_receiver()
    settings = receiver.transmitter_settings(connect_timeout=0.5)
    await receiver.server.stop(grace=0.1)  # nothing listens on those ports any more
    tx = make_transmitter(settings)
    start = time.monotonic()
    with pytest.raises(ReceiverUnreachable, match="cannot connect"):
        await tx.harness.run_protocol(make_sender(protocol, settings, None), load_image(None), "x")
    assert time.monotonic() - start < 5


async def test_transmitter_retries_until_the_receiver_comes_up() -> None:
    """Compose starts services in any order: connecting retries until the deadline."""
    probe = await start_receiver()
    ports = dict(probe.server.ports)
    settings = probe.transmitter_settings(connect_timeout=10.0, images=1, warmup=0)
    await probe.server.stop(grace=0.1)

    async def start_late() -> None:
        await asyncio.sleep(0.8)
        late = await start_receiver(
            ws_port=ports["websocket"], grpc_port=ports["grpc"], http_port=ports["http"]
        )
        await asyncio.sleep(3)
        await late.server.stop(grace=0.5)

    starter = asyncio.create_task(start_late())
    tx = make_transmitter(settings)
    run = await tx.harness.run_protocol(
        make_sender("websocket", settings, None), load_image(None), "late"
    )
    assert run.samples[0].checksum_ok
    await starter


async def test_transmitter_reports_integrity_failure(live_receiver: LiveReceiver) -> None:
    """A corrupted image (declared digest wrong) makes the run fail with a clear reason."""
    image = load_image(None)
    corrupted = Image("corrupted", image.data, wire.digest(b"something else"), "image/png")
    settings = live_receiver.transmitter_settings(images=1, warmup=0)
    tx = make_transmitter(settings)
    with pytest.raises(IntegrityError, match="arrived corrupted"):
        await tx.harness.run_protocol(make_sender("grpc", settings, None), corrupted, "corrupt")
    value = tx.metrics.registry.get_sample_value(
        "imgbench_send_errors_total", {"protocol": "grpc", "reason": "integrity"}
    )
    assert value == 1


async def test_image_lost_when_the_receiver_stops_mid_run() -> None:
    receiver = await start_receiver()
    settings = receiver.transmitter_settings(images=50, warmup=0, delay=0.05)
    tx = make_transmitter(settings)

    async def stop_soon() -> None:
        await asyncio.sleep(0.3)
        await receiver.server.stop(grace=0.1)

    stopper = asyncio.create_task(stop_soon())
    with pytest.raises(ImageLost):
        await tx.harness.run_protocol(
            make_sender("websocket", settings, None), load_image(None), "lost"
        )
    await stopper


async def test_grpc_chunked_upload_bad_input(live_receiver: LiveReceiver) -> None:
    target = f"127.0.0.1:{live_receiver.server.ports['grpc']}"
    first, second = wire.encode_chunks(meta("grpc", "chunked"), b"x" * 2000, 1000)
    async with grpc.aio.insecure_channel(target) as channel:
        upload = channel.stream_unary(names.UPLOAD, None, None)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await upload(iter([second]))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        # The client stops after half the announced bytes: counted as a disconnect.
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await upload(iter([first]))
        assert "ended after 1000 of 2000" in (info.value.details() or "")
    key = "imgbench_rejected_messages_total"
    assert counter(live_receiver, key, protocol="grpc", reason="invalid_field") == 2
    assert counter(live_receiver, "imgbench_disconnects_total", protocol="grpc") == 1
