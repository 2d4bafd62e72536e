"""Both protocols end to end over real loopback sockets: counts, checksums, figures."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from imgbench.errors import RunError
from imgbench.measure.results import compute_figures
from imgbench.runtime.http import get_json
from imgbench.wire import digest
from transmitter.compare import run_comparison
from transmitter.image import Image, load_image
from transmitter.senders import make_sender

from helpers.services import LiveReceiver, make_transmitter

MODES = [
    ("websocket", "binary"),
    ("websocket", "json"),
    ("grpc", "unary"),
    ("grpc", "stream"),
    ("grpc", "chunked"),
]


@pytest.mark.parametrize(("protocol", "mode"), MODES)
async def test_each_mode_delivers_every_image_intact(
    live_receiver: LiveReceiver, protocol: str, mode: str
) -> None:
    settings = live_receiver.transmitter_settings(
        images=4, delay=0.05, ws_mode=mode if protocol == "websocket" else "binary",
        grpc_mode=mode if protocol == "grpc" else "unary",
    )  # fmt: skip
    tx = make_transmitter(settings)
    image = load_image(None)
    run = await tx.harness.run_protocol(make_sender(protocol, settings, None), image, "run-e2e")

    assert [s.sequence for s in run.samples] == [0, 1, 2, 3]
    assert len(run.warmup_samples) == 1
    assert all(s.checksum_ok and s.image_bytes == image.size for s in run.samples)
    for s in run.samples:
        # One host clock: the receive-complete stamp lies between send and ack.
        assert s.send_ns < s.receive_ns < s.ack_ns

    figures = compute_figures(run.samples)
    assert math.isclose(
        figures.cumulative_transmission_s, sum(s.transmission_s for s in run.samples)
    )
    # Total transfer includes the (N-1) delays between sends.
    assert figures.total_transfer_s >= (4 - 1) * 0.05
    assert figures.total_transfer_s >= figures.cumulative_transmission_s

    # The receiver's own record of the run agrees with what the acks said.
    status, body = await get_json("127.0.0.1", live_receiver.server.ports["http"], "/runs/run-e2e")
    assert status == 200
    (record,) = body["protocols"]
    assert (record["protocol"], record["mode"], record["received"]) == (protocol, mode, 4)
    assert record["complete"] is True
    assert [r["receive_ns"] for r in record["samples"]] == [s.receive_ns for s in run.samples]
    assert math.isclose(
        record["figures"]["cumulative_transmission_s"], figures.cumulative_transmission_s
    )


async def test_identical_image_bytes_on_both_transports(live_receiver: LiveReceiver) -> None:
    """Binary WebSocket and gRPC carry the same protobuf: only the label strings differ."""
    settings = live_receiver.transmitter_settings(images=1, warmup=0)
    tx = make_transmitter(settings)
    image = load_image(None)
    ws = await tx.harness.run_protocol(make_sender("websocket", settings, None), image, "same-1")
    grpc = await tx.harness.run_protocol(make_sender("grpc", settings, None), image, "same-1")
    label_bytes = len("websocket") + len("binary") - len("grpc") - len("unary")
    assert ws.message_bytes - grpc.message_bytes == label_bytes
    assert ws.message_bytes - image.size < 200  # a thin envelope, no base64 or JSON


async def test_twenty_mib_image_through_both_protocols_with_default_limits(
    live_receiver: LiveReceiver,
) -> None:
    data = os.urandom(20 * 1024 * 1024)
    image = Image("random 20 MiB", data, digest(data), "application/octet-stream")
    settings = live_receiver.transmitter_settings(images=1, warmup=0)
    # The default, not raised for the test.
    assert settings.transport.max_message_bytes == 64 * 1024 * 1024
    tx = make_transmitter(settings)
    for protocol in ("websocket", "grpc"):
        run = await tx.harness.run_protocol(make_sender(protocol, settings, None), image, "big")
        assert run.samples[0].checksum_ok
        assert run.samples[0].image_bytes == 20 * 1024 * 1024


async def test_comparison_runs_protocols_in_abba_order(live_receiver: LiveReceiver) -> None:
    settings = live_receiver.transmitter_settings(images=2, warmup=0, repeat=4)
    tx = make_transmitter(settings)
    comparison = await run_comparison(settings, tracing=tx.tracing, metrics=tx.metrics)
    order = [r.protocol for r in comparison.runs]
    assert order == ["websocket", "grpc", "grpc", "websocket",
                     "grpc", "websocket", "websocket", "grpc"]  # fmt: skip
    assert [r.repetition for r in comparison.runs] == [0, 0, 1, 1, 2, 2, 3, 3]
    assert comparison.labels() == ["websocket/binary", "grpc/unary"]
    assert len(comparison.samples_for("grpc/unary")) == 8


async def test_burst_schedule_reports_queueing_when_receiver_is_slow() -> None:
    """With 1 slot at the receiver and 4 images scheduled at once, later images queue."""
    from helpers.services import start_receiver

    receiver = await start_receiver(max_in_flight=1)
    try:
        settings = receiver.transmitter_settings(images=6, warmup=0, delay=0.0, in_flight=3)
        tx = make_transmitter(settings)
        run = await tx.harness.run_protocol(
            make_sender("grpc", settings, None), load_image(None), "burst"
        )
    finally:
        await receiver.server.stop(grace=1.0)
    queue = [s.queue_s for s in run.samples]
    # 3 slots for 6 images scheduled at t0: at least the last three waited for a slot.
    assert sum(q > 0 for q in queue) >= 3
    for s in run.samples:
        assert s.scheduled_ns <= s.send_ns
        assert s.transmission_s >= s.queue_s


@pytest.mark.parametrize("protocol", ["websocket", "grpc"])
async def test_compression_on_both_transports(live_receiver: LiveReceiver, protocol: str) -> None:
    """--compression negotiates permessage-deflate / gzip and still delivers intact bytes."""
    settings = live_receiver.transmitter_settings(images=2, warmup=0, compression=True)
    tx = make_transmitter(settings)
    sender = make_sender(protocol, settings, None)
    # A highly compressible image, so compression is visible on the wire.
    data = bytes(1024 * 1024)
    image = Image("zeros", data, digest(data), "application/octet-stream")
    run = await tx.harness.run_protocol(sender, image, f"compressed-{protocol}")
    assert all(s.checksum_ok for s in run.samples)
    assert run.compression is True
    if protocol == "websocket":
        from transmitter.senders import WebSocketSender

        assert isinstance(sender, WebSocketSender) and sender._conn is not None
        assert [ext.name for ext in sender._conn.protocol.extensions] == ["permessage-deflate"]


async def test_chunked_upload_carries_an_image_above_the_message_limit() -> None:
    from helpers.services import start_receiver

    receiver = await start_receiver(max_message_bytes=4 * 1024 * 1024)
    try:
        data = os.urandom(20 * 1024 * 1024)
        image = Image("random 20 MiB", data, digest(data), "application/octet-stream")
        settings = receiver.transmitter_settings(images=2, warmup=0)
        tx = make_transmitter(settings)
        unary = make_sender("grpc", settings, None)
        with pytest.raises(RunError, match="IMGBENCH_GRPC_MODE=chunked"):
            await tx.harness.run_protocol(unary, image, "too-big")
        chunked = settings.updated(grpc_mode="chunked", chunk_bytes=1024 * 1024)
        run = await tx.harness.run_protocol(make_sender("grpc", chunked, None), image, "chunks")
        assert [s.checksum_ok for s in run.samples] == [True, True]
        assert run.samples[0].image_bytes == len(data)
        # 20 chunks of 1 MiB, each with a small envelope; the first also has the header.
        assert len(data) < run.message_bytes < len(data) + 20 * 64 + 300
    finally:
        await receiver.server.stop(grace=1.0)


async def test_receiver_evicts_finished_runs_before_unfinished_ones() -> None:
    from helpers.services import start_receiver

    receiver = await start_receiver(max_runs=2)
    try:
        settings = receiver.transmitter_settings(images=1, warmup=0)
        tx = make_transmitter(settings)
        image = load_image(None)
        # "open" stays unfinished (1 of 2 images); "done" completes.
        open_settings = settings.updated(images=2)
        ws = make_sender("websocket", open_settings, None)
        await ws.connect(deadline=1e12, traceparent="")
        from imgbench import wire

        meta = wire.ImageMeta(
            run_id="open", protocol="websocket", mode="binary", sequence=0, total=2,
            send_time_ns=1, clock=wire.Clock.CLOCK_MONOTONIC, content_type="image/png",
            sha256=image.sha256,
        )  # fmt: skip
        await ws.send(wire.encode_image(meta, image.data))
        await ws.close()
        await tx.harness.run_protocol(make_sender("grpc", settings, None), image, "done")
        await tx.harness.run_protocol(make_sender("grpc", settings, None), image, "newest")
        port = receiver.server.ports["http"]
        status, body = await get_json("127.0.0.1", port, "/runs")
        assert status == 200
        assert body["run_ids"] == ["open", "newest"]
    finally:
        await receiver.server.stop(grace=1.0)


async def test_save_dir_writes_images_only_when_asked(tmp_path: Path) -> None:
    from helpers.services import start_receiver

    receiver = await start_receiver(save_dir=tmp_path)
    try:
        settings = receiver.transmitter_settings(images=2, warmup=1)
        tx = make_transmitter(settings)
        image = load_image(None)
        await tx.harness.run_protocol(make_sender("grpc", settings, None), image, "saved")
        await receiver.server.core.drain()
    finally:
        await receiver.server.stop(grace=1.0)
    files = sorted(p.name for p in (tmp_path / "saved").iterdir())
    assert files == [
        "grpc-unary-image-000000.bin",
        "grpc-unary-image-000001.bin",
        "grpc-unary-warmup-000000.bin",
    ]
    assert (tmp_path / "saved" / files[0]).read_bytes() == image.data


async def test_nothing_is_written_without_save_dir(
    live_receiver: LiveReceiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = live_receiver.transmitter_settings(images=1, warmup=0)
    await make_transmitter(settings).harness.run_protocol(
        make_sender("websocket", settings, None), load_image(None), "unsaved"
    )
    assert os.listdir(tmp_path) == []
