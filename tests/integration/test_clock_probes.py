"""Clock probes over real sockets: the receiver answers on every transport, keeps
the echoed exchanges, estimates the offset, and refuses a send time in the future."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import replace

import grpc
import pytest
from websockets.asyncio.client import connect

from imgbench import wire
from imgbench.measure.clock import PROBES_PER_GROUP, Probe, estimate_run
from imgbench.observe.tracing import traceparent
from imgbench.runtime.resources import boot_id
from imgbench.wire import names
from transmitter.image import Image
from transmitter.senders import make_sender

from helpers.services import LiveReceiver, make_transmitter, memory_tracing

Exchange = Callable[[bytes], Awaitable[bytes]]


def counter(receiver: LiveReceiver, name: str, **labels: str) -> float:
    value = receiver.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def probe_meta(protocol: str, mode: str, run_id: str, probe: wire.ProbeInfo) -> wire.ImageMeta:
    return wire.ImageMeta(
        run_id=run_id, protocol=protocol, mode=mode, sequence=0, total=2,
        send_time_ns=time.monotonic_ns(), clock=wire.Clock.CLOCK_MONOTONIC, content_type="",
        sha256=b"", probe=probe,
    )  # fmt: skip


async def probe_groups(
    send: Exchange, protocol: str, mode: str, run_id: str, groups: int = 2
) -> list[list[Probe]]:
    """Send ``groups`` groups of probes, each echoing the previous exchange.

    Returns the transmitter's view of every exchange, grouped."""
    done: list[list[Probe]] = []
    pending: list[wire.Exchange] = []
    next_id = 1
    for group in range(groups + 1):  # the extra round: one final probe echoing the rest
        count = PROBES_PER_GROUP if group < groups else 1
        done.append([])
        for _ in range(count):
            info = wire.ProbeInfo(
                id=next_id, revision=names.PROBE_REVISION, group=group,
                completed=tuple(pending), boot_id=boot_id(),
            )  # fmt: skip
            pending = []
            meta = probe_meta(protocol, mode, run_id, info)
            t1 = time.monotonic_ns()
            meta = wire.ImageMeta(**{**_fields(meta), "send_time_ns": t1})
            raw = await send(wire.encode_probe(meta))
            t4 = time.monotonic_ns()
            reply = wire.decode_probe_reply(wire.decode_ack(raw))
            assert reply is not None, wire.decode_ack(raw)
            assert reply.id == next_id and reply.revision == names.PROBE_REVISION
            assert reply.boot_id == boot_id() and reply.clock == wire.Clock.CLOCK_MONOTONIC
            pending.append(
                wire.Exchange(next_id, group, t1, reply.receive_time_ns, reply.reply_time_ns, t4)
            )
            done[-1].append(Probe(t1, reply.receive_time_ns, reply.reply_time_ns, t4))
            next_id += 1
    return done[:groups]


def _fields(meta: wire.ImageMeta) -> dict[str, object]:
    return {name: getattr(meta, name) for name in meta.__slots__}


def ws_url(receiver: LiveReceiver, path: str) -> str:
    return f"ws://127.0.0.1:{receiver.server.ports['websocket']}{path}"


@pytest.mark.parametrize(
    ("protocol", "mode"),
    [("websocket", "binary"), ("websocket", "json"), ("grpc", "unary"), ("grpc", "chunked"),
     ("grpc", "stream")],
)  # fmt: skip
async def test_probes_give_a_shared_clock_on_one_host(
    live_receiver: LiveReceiver, protocol: str, mode: str
) -> None:
    run_id = f"probe-{protocol}-{mode}"
    target = f"127.0.0.1:{live_receiver.server.ports['grpc']}"
    if protocol == "websocket":
        path = "/v1/images/json" if mode == "json" else "/v1/images"
        async with connect(ws_url(live_receiver, path), proxy=None) as ws:

            async def send(raw: bytes) -> bytes:
                await ws.send(raw)
                reply = await ws.recv(decode=False)
                assert isinstance(reply, bytes)
                return reply

            groups = await probe_groups(send, protocol, mode, run_id)
    elif mode == "stream":
        async with grpc.aio.insecure_channel(target) as channel:
            call = channel.stream_stream(names.SEND_STREAM, None, None)()

            async def send(raw: bytes) -> bytes:
                await call.write(raw)
                reply = await call.read()
                assert isinstance(reply, bytes)
                return reply

            groups = await probe_groups(send, protocol, mode, run_id)
            await call.done_writing()
    else:
        async with grpc.aio.insecure_channel(target) as channel:
            unary = channel.unary_unary(names.SEND, None, None)

            async def send(raw: bytes) -> bytes:
                reply: bytes = await unary(raw)
                return reply

            groups = await probe_groups(send, protocol, mode, run_id)
    # The transmitter's estimate: one kernel, one clock.
    mine = estimate_run(groups, transmitter_boot_id=boot_id(), receiver_boot_id=boot_id())
    assert mine.shared
    summary = mine.summary()
    assert abs(summary.offset_ns) <= summary.bound_ns < 50_000_000  # 50 ms: a noisy machine
    # The receiver holds the same exchanges and reaches the same decision.
    (record,) = live_receiver.server.core.run(run_id)
    assert record["clock"]["status"] == "shared"
    assert record["clock"]["n_probes"] == 2 * PROBES_PER_GROUP
    assert record["clock"]["offset_ns"] == summary.offset_ns
    assert (
        counter(
            live_receiver,
            "imgbench_clock_probes_total",
            protocol=protocol,
            mode=mode,
            direction="upload",
        )
        == 2 * PROBES_PER_GROUP + 1
    )


def image_meta(protocol: str, mode: str, run_id: str, send_time_ns: int) -> wire.ImageMeta:
    return wire.ImageMeta(
        run_id=run_id, protocol=protocol, mode=mode, sequence=0, total=2,
        send_time_ns=send_time_ns, clock=wire.Clock.CLOCK_MONOTONIC, content_type="image/png",
        sha256=wire.digest(b"p"),
    )  # fmt: skip


async def test_a_send_time_in_the_future_is_refused_and_counted(
    live_receiver: LiveReceiver,
) -> None:
    key = "imgbench_rejected_messages_total"
    future = time.monotonic_ns() + 10 * 10**9
    # WebSocket, no probes yet: a negative raw time is refused.
    async with connect(ws_url(live_receiver, "/v1/images"), proxy=None) as ws:
        await ws.send(wire.encode_image(image_meta("websocket", "binary", "fut-1", future), b"p"))
        ack = wire.decode_ack(await ws.recv(decode=False))
        assert ack.error.startswith("clock:"), ack
        # With a (shared) estimate the bound is 0: still refused, and counted.

        async def send(raw: bytes) -> bytes:
            await ws.send(raw)
            reply = await ws.recv(decode=False)
            assert isinstance(reply, bytes)
            return reply

        await probe_groups(send, "websocket", "binary", "fut-1", groups=1)
        await ws.send(wire.encode_image(image_meta("websocket", "binary", "fut-1", future), b"p"))
        ack = wire.decode_ack(await ws.recv(decode=False))
        assert ack.error.startswith("clock:"), ack
        # A present-day image on the same connection is accepted.
        now = time.monotonic_ns()
        await ws.send(wire.encode_image(image_meta("websocket", "binary", "fut-1", now), b"p"))
        ack = wire.decode_ack(await ws.recv(decode=False))
        assert ack.error == "" and ack.checksum_ok and ack.transmission_ns >= 0
    assert counter(live_receiver, key, protocol="websocket", reason="clock") == 2
    # gRPC unary: INVALID_ARGUMENT naming the reason.
    target = f"127.0.0.1:{live_receiver.server.ports['grpc']}"
    async with grpc.aio.insecure_channel(target) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await channel.unary_unary(names.SEND, None, None)(
                wire.encode_image(image_meta("grpc", "unary", "fut-2", future), b"p")
            )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (info.value.details() or "").startswith("clock:")
    assert counter(live_receiver, key, protocol="grpc", reason="clock") == 1
    # Nothing negative was recorded: /runs holds one non-negative sample.
    (record,) = live_receiver.server.core.run("fut-1")
    assert [s["transmission_s"] >= 0 for s in record["samples"]] == [True]
    (refused,) = live_receiver.server.core.run("fut-2")
    assert refused["samples"] == [] and refused["figures"] is None


async def test_images_on_the_json_endpoint_must_be_text(live_receiver: LiveReceiver) -> None:
    async with connect(ws_url(live_receiver, "/v1/images/json"), proxy=None) as ws:
        now = time.monotonic_ns()
        await ws.send(wire.encode_image(image_meta("websocket", "json", "json-1", now), b"p"))
        ack = wire.decode_ack(await ws.recv(decode=False))
    assert ack.error.startswith("wrong_frame_type"), ack
    assert counter(
        live_receiver, "imgbench_rejected_messages_total", protocol="websocket",
        reason="wrong_frame_type",
    ) == 1  # fmt: skip


@pytest.mark.parametrize(
    ("protocol", "overrides"),
    [("websocket", {}), ("websocket", {"ws_mode": "json"}), ("grpc", {}),
     ("grpc", {"grpc_mode": "stream"}), ("grpc", {"grpc_mode": "chunked"})],
)  # fmt: skip
async def test_a_run_probes_before_and_after_and_finds_the_clock_shared(
    live_receiver: LiveReceiver, protocol: str, overrides: dict[str, object]
) -> None:
    settings = live_receiver.transmitter_settings(images=3, delay=0.2, **overrides)
    image = Image("x", b"x" * 50_000, wire.digest(b"x" * 50_000), "image/png")
    work = settings.workload
    run_id = f"run-{protocol}-{len(overrides)}-{work.grpc_mode}-{work.ws_mode}"
    run = await make_transmitter(settings).harness.run_protocol(
        make_sender(protocol, settings, None), image, run_id
    )
    clock = run.clock
    assert clock["status"] == "shared", clock
    # Full groups before the first image and after the last. None in the pauses
    # (100 ms each, room for a group): the first group found one clock, and on a
    # shared clock a pause's group could not change the figures (ClockProber.shared).
    assert [g["n_probes"] for g in clock["groups"]] == [PROBES_PER_GROUP] * 2, clock
    assert abs(clock["offset_ns"]) <= clock["bound_ns"] < 50_000_000
    # Shared clock: today's exact figures, nothing corrected.
    assert all(s.transmission_ns is None and s.bound_ns == 0 for s in run.samples)
    # The receiver got every exchange echoed and made the same estimate.
    (record,) = live_receiver.server.core.run(run_id)
    assert record["clock"]["status"] == "shared"
    assert record["clock"]["n_probes"] == clock["n_probes"]
    assert record["clock"]["offset_ns"] == clock["offset_ns"]


async def test_a_clock_not_known_to_be_shared_is_probed_in_every_pause(
    live_receiver: LiveReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another boot id (as from another host): the clocks are not known to be one, so
    each pause gets its group, as many probes as fit in its first half."""
    monkeypatch.setattr("transmitter.probes.boot_id", lambda: "another-host-boot-id")
    settings = live_receiver.transmitter_settings(images=3, delay=0.2)
    image = Image("x", b"x" * 50_000, wire.digest(b"x" * 50_000), "image/png")
    run = await make_transmitter(settings).harness.run_protocol(
        make_sender("websocket", settings, None), image, "other-boot"
    )
    assert run.clock["status"] == "corrected", run.clock
    # Before the first image, in the pauses (loopback probes fit in 100 ms), after the
    # last; a stall on this shared machine may make one pause skip its group, not both.
    counts = [g["n_probes"] for g in run.clock["groups"]]
    assert len(counts) in (3, 4), counts
    # Full groups before and after; in a pause as many as fit (a stall on this shared
    # machine may cut one short, never to zero on loopback with 100 ms to spare).
    assert counts[0] == counts[-1] == PROBES_PER_GROUP and min(counts) >= 1, counts


async def test_no_pause_no_probe_between_images(live_receiver: LiveReceiver) -> None:
    settings = live_receiver.transmitter_settings(images=3, delay=0.0)
    image = Image("x", b"x" * 1000, wire.digest(b"x" * 1000), "image/png")
    run = await make_transmitter(settings).harness.run_protocol(
        make_sender("websocket", settings, None), image, "no-pause"
    )
    assert [g["n_probes"] for g in run.clock["groups"]] == [PROBES_PER_GROUP] * 2


async def test_an_offset_transmitter_clock_is_estimated_corrected_and_spans_moved(
    live_receiver: LiveReceiver,
) -> None:
    """A transmitter whose clocks differ (monotonic 1000 s behind, wall clock 5 s ahead):
    the receiver estimates the offset within its bound, corrects the image's time,
    refuses one sent "in the future", and its span does not start before its parent."""
    behind, ahead = 1000 * 10**9, 5 * 10**9
    run_id = "offset-tx"
    async with connect(ws_url(live_receiver, "/v1/images"), proxy=None) as ws:

        async def exchange(raw: bytes) -> bytes:
            await ws.send(raw)
            reply = await ws.recv(decode=False)
            assert isinstance(reply, bytes)
            return reply

        pending: tuple[wire.Exchange, ...] = ()
        for n in range(PROBES_PER_GROUP + 1):  # a group, then one probe echoing its last
            t1 = time.monotonic_ns() - behind
            info = wire.ProbeInfo(
                id=n + 1, revision=names.PROBE_REVISION, group=0 if n < 8 else 1,
                completed=pending, boot_id=boot_id(), realtime_ns=time.time_ns() + ahead,
            )  # fmt: skip
            meta = probe_meta("websocket", "binary", run_id, info)
            reply = wire.decode_probe_reply(
                wire.decode_ack(await exchange(wire.encode_probe(replace(meta, send_time_ns=t1))))
            )
            t4 = time.monotonic_ns() - behind
            assert reply is not None
            pending = (
                wire.Exchange(
                    n + 1, info.group, t1, reply.receive_time_ns, reply.reply_time_ns, t4
                ),
            )
        (record,) = live_receiver.server.core.run(run_id)
        clock = record["clock"]
        assert clock["status"] == "corrected", clock
        assert abs(clock["offset_ns"] - behind) <= clock["bound_ns"] < 50_000_000, clock
        # An image sent 1 s "in the future" on the transmitter's clock is refused.
        future = image_meta("websocket", "binary", run_id, time.monotonic_ns() - behind + 10**9)
        await ws.send(wire.encode_image(future, b"p"))
        assert wire.decode_ack(await ws.recv(decode=False)).error.startswith("clock:")
        # A real one: corrected to a small positive time; its span starts after its parent.
        provider, _ = memory_tracing()
        parent = provider.get_tracer("tx").start_span(
            "send image", start_time=time.time_ns() + ahead
        )
        now = image_meta("websocket", "binary", run_id, time.monotonic_ns() - behind)
        await ws.send(wire.encode_image(replace(now, traceparent=traceparent(parent)), b"p"))
        ack = wire.decode_ack(await ws.recv(decode=False))
        assert ack.error == "" and ack.transmission_ns > behind  # the raw time, offset included
    (record,) = live_receiver.server.core.run(run_id)
    (sample,) = record["samples"]
    assert 0 <= sample["transmission_s"] < 0.5 and sample["bound_s"] < 0.05, sample
    assert sample["raw_transmission_s"] > 999
    (child,) = [s for s in live_receiver.spans.get_finished_spans() if s.name == "receive image"]
    assert child.parent is not None and child.parent.span_id == parent.get_span_context().span_id
    assert child.start_time is not None and parent.start_time is not None  # type: ignore[attr-defined]
    assert child.start_time >= parent.start_time - clock["bound_ns"]  # type: ignore[attr-defined]
    assert child.attributes is not None
    assert child.attributes["imgbench.clock.status"] == "corrected"
    shift = child.attributes["imgbench.clock.span_shift_ns"]
    assert isinstance(shift, int) and abs(shift + ahead) < 50_000_000, shift


async def test_echoed_probe_exchanges_per_run_are_bounded(live_receiver: LiveReceiver) -> None:
    """A client echoing ever new exchanges cannot grow the receiver's memory: beyond
    MAX_PROBES_PER_RECORD per run, probes are refused (reason clock), counted."""
    from receiver.step import MAX_PROBES_PER_RECORD

    def probe(first_id: int, count: int) -> bytes:
        fake = tuple(
            wire.Exchange(i, i // PROBES_PER_GROUP, 1_000, 1_100, 1_200, 1_300)
            for i in range(first_id, first_id + count)
        )
        info = wire.ProbeInfo(
            id=first_id, revision=names.PROBE_REVISION, group=0, completed=fake,
            boot_id=boot_id(),
        )  # fmt: skip
        return wire.encode_probe(probe_meta("websocket", "binary", "probe-flood", info))

    async with connect(ws_url(live_receiver, "/v1/images"), proxy=None) as ws:
        await ws.send(probe(1, MAX_PROBES_PER_RECORD))
        assert wire.decode_ack(await ws.recv(decode=False)).error == ""
        await ws.send(probe(MAX_PROBES_PER_RECORD + 1, 1))
        refused = wire.decode_ack(await ws.recv(decode=False))
    assert refused.error.startswith("clock: more than"), refused.error
    assert counter(live_receiver, "imgbench_rejected_messages_total", protocol="websocket",
                   reason="clock") == 1  # fmt: skip
    (record,) = live_receiver.server.core.records("probe-flood")
    assert record.probe_count == MAX_PROBES_PER_RECORD
