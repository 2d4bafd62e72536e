"""Socket-level abuse, one case per kind in issue 11's battery, against one real receiver.

The receiver is a real process (``python -m receiver``) shared by the module, so
that its RSS is its own and the cases run back to back as an attacker would
send them. Every case asserts:

- a clear refusal: an error Ack, a close code, a gRPC status or an HTTP status;
- the right counter, by exact delta, scraped from the receiver's ``/metrics``;
- the receiver still healthy (``/healthz``);
- a legitimate run right after it succeeds (the real transmitter harness, both
  transports, and ``GET /runs/<id>`` shows both records complete);
- receiver RSS back under :data:`RSS_BOUND` (README "Bad input").
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from imgbench import wire
from imgbench.config.settings import TransmitterSettings
from imgbench.runtime.http import get_json, request
from imgbench.v1.imgbench_pb2 import ImageChunk
from imgbench.wire import names
from transmitter.image import load_image
from transmitter.senders import make_sender

from helpers.fuzz import Mutator
from helpers.services import make_transmitter, receiver_process

MIB = 1024 * 1024
#: IMGBENCH_MAX_MESSAGE_BYTES of the module's receiver (small: bombs cost less to send).
LIMIT = 4 * MIB
#: The stated bound (README "Bad input"): the receiver's RSS after each case and the
#: legitimate run that follows it (58-94 MiB measured; 4 MiB message limit).
RSS_BOUND = 160 * MIB
SEND = f"/{names.GRPC_SERVICE}/{names.SEND_METHOD}"
UPLOAD = f"/{names.GRPC_SERVICE}/{names.UPLOAD_METHOD}"


@dataclass
class Target:
    pid: int
    ports: dict[str, int]
    rss: dict[str, int]

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.ports['websocket']}"

    @property
    def grpc(self) -> str:
        return f"127.0.0.1:{self.ports['grpc']}"


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    env = {
        "IMGBENCH_MAX_MESSAGE_BYTES": str(LIMIT),
        "RECEIVER_MAX_IMAGE_BYTES": str(16 * MIB),
        # Mutated messages that happen to be valid open junk runs: let them be evicted
        # as abandoned after a second, so the legitimate run always finds a slot.
        "RECEIVER_RUN_IDLE_TIMEOUT": "1",
    }
    with receiver_process(tmp_path_factory.mktemp("abuse"), env=env) as receiver:
        yield Target(receiver.pid, receiver.ports, {})
        assert receiver.proc.poll() is None, "the receiver died during the abuse cases"


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(t: Target) -> Samples:
    status, _, body = await request("127.0.0.1", t.ports["http"], "GET", "/metrics", timeout=10)
    assert status == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


def rejected(before: Samples, after: Samples, protocol: str, reason: str) -> float:
    return delta(
        before, after, "imgbench_rejected_messages_total", protocol=protocol, reason=reason
    )


def rss(t: Target) -> int:
    for line in Path(f"/proc/{t.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def still_fine(t: Target, case: str) -> None:
    """Healthy, a legitimate run on both transports succeeds, RSS back under the bound."""
    status, health = await get_json("127.0.0.1", t.ports["http"], "/healthz")
    assert status == 200 and health["status"] == "ok", health
    settings = TransmitterSettings().updated(
        receiver_host="127.0.0.1", ws_port=t.ports["websocket"], grpc_port=t.ports["grpc"],
        http_port=t.ports["http"], images=2, delay=0.0, warmup=0, connect_timeout=5.0,
        image_timeout=20.0, max_message_bytes=LIMIT,
    )  # fmt: skip
    tx = make_transmitter(settings)
    run_id = f"legit-{case}"
    for protocol in ("websocket", "grpc"):
        run = await tx.harness.run_protocol(
            make_sender(protocol, settings, None), load_image(None), run_id
        )
        assert run.figures().images == 2
    status, doc = await get_json("127.0.0.1", t.ports["http"], f"/runs/{run_id}")
    assert status == 200
    assert [r["complete"] for r in doc["protocols"]] == [True, True], doc
    now = rss(t)
    t.rss[case] = now
    print(f"{case}: receiver RSS {now / MIB:.0f} MiB")
    assert now < RSS_BOUND, (case, now / MIB)


async def eventually(check: object, timeout: float = 10.0) -> None:
    """Counters of a closed connection are updated when the server notices: poll."""
    assert callable(check)
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "counter not reached"
        await asyncio.sleep(0.05)


def _meta(run_id: str, protocol: str, mode: str, data: bytes, **kw: object) -> wire.ImageMeta:
    fields: dict[str, object] = dict(
        run_id=run_id, protocol=protocol, mode=mode, sequence=0, total=1,
        send_time_ns=time.monotonic_ns(), clock=wire.Clock.CLOCK_MONOTONIC,
        content_type="image/png", sha256=wire.digest(data),
    )  # fmt: skip
    fields.update(kw)
    return wire.ImageMeta(**fields)  # type: ignore[arg-type]


def _reason(error: str) -> str:
    return error.split(":", 1)[0]


async def _grpc_send(channel: grpc.aio.Channel, raw: bytes) -> tuple[grpc.StatusCode, str]:
    call = channel.unary_unary(SEND, request_serializer=None, response_deserializer=None)
    try:
        ack = wire.decode_ack(await call(raw, timeout=10))
    except grpc.aio.AioRpcError as exc:
        return exc.code(), exc.details() or ""
    return grpc.StatusCode.OK, ack.error


# -- random frames -------------------------------------------------------------------


async def test_random_frames(target: Target) -> None:
    rng = random.Random(11)
    before = await scrape(target)
    reasons: dict[str, int] = {}
    async with connect(target.ws + "/v1/images", proxy=None) as ws:
        for _ in range(300):
            await ws.send(rng.randbytes(rng.randrange(512)))
            ack = wire.decode_ack(await ws.recv(decode=False))
            assert ack.error, "random bytes accepted"
            reasons[_reason(ack.error)] = reasons.get(_reason(ack.error), 0) + 1
    grpc_reasons: dict[str, int] = {}
    async with grpc.aio.insecure_channel(target.grpc) as channel:
        for _ in range(100):
            code, details = await _grpc_send(channel, rng.randbytes(rng.randrange(512)))
            assert code == grpc.StatusCode.INVALID_ARGUMENT, (code, details)
            grpc_reasons[_reason(details)] = grpc_reasons.get(_reason(details), 0) + 1
    after = await scrape(target)
    for protocol, seen in (("websocket", reasons), ("grpc", grpc_reasons)):
        for reason, count in seen.items():
            assert rejected(before, after, protocol, reason) == count, (protocol, reason)
    assert sum(reasons.values()) == 300 and sum(grpc_reasons.values()) == 100
    await still_fine(target, "random-frames")


# -- mutated headers -------------------------------------------------------------------


async def test_mutated_message_headers(target: Target) -> None:
    """Valid messages with their header fields mutated: each is refused with its reason,
    or acknowledged as an integrity failure, or (still valid) recorded: never lost."""
    rng = random.Random(12)
    data = b"payload" * 8
    seeds = {
        mode: [
            wire.encode_image(_meta(f"m{i}", protocol, mode, data, total=1 + i % 3), data)
            for i in range(8)
        ]
        for protocol, mode in (("websocket", "binary"), ("grpc", "stream"))
    }
    before = await scrape(target)
    outcomes: dict[tuple[str, str], int] = {}

    def note(protocol: str, ack: wire.Ack) -> None:
        key = _reason(ack.error) if ack.error else ("ok" if ack.checksum_ok else "integrity")
        outcomes[(protocol, key)] = outcomes.get((protocol, key), 0) + 1

    mutator = Mutator(rng, seeds["binary"], ())
    async with connect(target.ws + "/v1/images", proxy=None) as ws:
        for _ in range(300):
            await ws.send(mutator.mutate(max_ops=2))
            note("websocket", wire.decode_ack(await ws.recv(decode=False)))
    mutator = Mutator(rng, seeds["stream"], ())
    async with grpc.aio.insecure_channel(target.grpc) as channel:
        stream = channel.stream_stream(
            f"/{names.GRPC_SERVICE}/{names.SEND_STREAM_METHOD}",
            request_serializer=None, response_deserializer=None,
        )  # fmt: skip
        call = stream()
        for _ in range(300):
            await call.write(mutator.mutate(max_ops=2))
            note("grpc", wire.decode_ack(await call.read()))
        await call.done_writing()
    after = await scrape(target)
    for (protocol, key), count in outcomes.items():
        if key == "integrity":
            mode = "binary" if protocol == "websocket" else "stream"
            got = delta(before, after, "imgbench_integrity_failures_total", protocol=protocol,
                        mode=mode, direction="upload")  # fmt: skip
        elif key == "ok":
            continue
        else:
            got = rejected(before, after, protocol, key)
        assert got == count, (protocol, key, got, count)
    refused = sum(c for (_, k), c in outcomes.items() if k not in ("ok", "integrity"))
    assert refused > 300, outcomes  # most mutations break something
    await asyncio.sleep(1.1)  # junk runs from valid mutations become abandoned (idle 1 s)
    await still_fine(target, "mutated-headers")


# -- oversized and compressed bombs ----------------------------------------------------


async def test_oversized_and_compressed_bombs(target: Target) -> None:
    """Zeros deflate/gzip ~1000:1: a few KiB on the wire, above the limit once inflated."""
    before = await scrape(target)
    # Within the headroom once inflated: an error Ack, the connection stays open.
    near = bytes(LIMIT + MIB // 2)
    # Beyond limit + headroom once inflated: websockets stops inflating and closes 1009.
    bomb = bytes(LIMIT + 3 * MIB)
    async with connect(target.ws + "/v1/images", proxy=None, compression="deflate",
                       max_size=None) as ws:  # fmt: skip
        await ws.send(near)
        assert _reason(wire.decode_ack(await ws.recv(decode=False)).error) == "oversized"
        await ws.send(bomb)
        with contextlib.suppress(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)
        assert ws.close_code == 1009
    async with grpc.aio.insecure_channel(
        target.grpc, compression=grpc.Compression.Gzip,
        options=[("grpc.max_send_message_length", 64 * MIB)],
    ) as channel:  # fmt: skip
        code, details = await _grpc_send(channel, near)
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and _reason(details) == "oversized"
        # Beyond the headroom grpc core refuses it itself (README: not countable).
        code, _ = await _grpc_send(channel, bomb)
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    after = await scrape(target)
    assert rejected(before, after, "websocket", "oversized") == 2
    assert rejected(before, after, "grpc", "oversized") == 1
    await still_fine(target, "bombs")


# -- hostile JSON ----------------------------------------------------------------------


async def test_hostile_json(target: Target) -> None:
    data = b"json"
    valid = json.loads(wire.encode_json_image(_meta("j", "websocket", "json", data), data))
    cases = {
        "[" * 100_000: "malformed",
        json.dumps({**valid, "sequence": 2**40}): "invalid_field",
        json.dumps({**valid, "send_time_ns": 2**70}): "invalid_field",
        json.dumps({**valid, "content_type": "\ud800"}): "malformed",
        json.dumps({**valid, "total": "3"}): "malformed",
        '{"run_id": ' * 50_000: "malformed",
    }
    before = await scrape(target)
    async with connect(target.ws + "/v1/images/json", proxy=None) as ws:
        for text, reason in cases.items():
            await ws.send(text)
            assert _reason(wire.decode_ack(await ws.recv(decode=False)).error) == reason
    after = await scrape(target)
    assert rejected(before, after, "websocket", "malformed") == 4
    assert rejected(before, after, "websocket", "invalid_field") == 2
    status, doc = await get_json("127.0.0.1", target.ports["http"], "/runs/j")
    assert status == 404, doc  # nothing recorded
    await still_fine(target, "hostile-json")


# -- chunk abuse -----------------------------------------------------------------------


async def test_chunk_abuse(target: Target) -> None:
    data = os.urandom(64 * 1024)
    meta = _meta("chunks", "grpc", "chunked", data)
    good = wire.encode_chunks(meta, data, 16 * 1024)
    header = ImageChunk.FromString(good[0])
    huge = ImageChunk(header=header.header, total_bytes=64 * MIB).SerializeToString()
    cases: list[tuple[list[bytes], grpc.StatusCode, str]] = [
        (good[1:], grpc.StatusCode.INVALID_ARGUMENT, "invalid_field"),  # no header
        ([good[0], good[0], *good[1:]], grpc.StatusCode.INVALID_ARGUMENT, "invalid_field"),
        ([*good, good[1]], grpc.StatusCode.INVALID_ARGUMENT, "invalid_field"),  # oversend
        ([huge], grpc.StatusCode.RESOURCE_EXHAUSTED, "oversized"),  # above max image
        ([good[0], os.urandom(100)], grpc.StatusCode.INVALID_ARGUMENT, "malformed"),
        (good[:2], grpc.StatusCode.INVALID_ARGUMENT, "invalid_field"),  # ends early
    ]
    before = await scrape(target)
    async with grpc.aio.insecure_channel(target.grpc) as channel:
        upload = channel.stream_unary(UPLOAD, request_serializer=None, response_deserializer=None)
        for chunks, code, reason in cases:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await upload(iter(chunks), timeout=10)
            assert caught.value.code() == code, (reason, caught.value)
            assert _reason(caught.value.details() or "") == reason
    after = await scrape(target)
    assert rejected(before, after, "grpc", "invalid_field") == 4
    assert rejected(before, after, "grpc", "oversized") == 1
    assert rejected(before, after, "grpc", "malformed") == 1
    # Only the upload that ended mid-image is a disconnect.
    assert delta(before, after, "imgbench_disconnects_total", protocol="grpc") == 1
    await still_fine(target, "chunk-abuse")


# -- idle and half-open connections ------------------------------------------------------


async def test_idle_and_half_open_connections(target: Target) -> None:
    """300 idle sockets (no bytes) held open across the three ports, while the receiver
    serves a legitimate run; half-closed ones are answered at once."""
    before = await scrape(target)
    idle = []
    for port in ("websocket", "grpc", "http"):
        for _ in range(100):
            idle.append(await asyncio.open_connection("127.0.0.1", target.ports[port]))
    # Half-open on the HTTP API: a partial request, then the client shuts its side.
    half = []
    for _ in range(50):
        reader, writer = await asyncio.open_connection("127.0.0.1", target.ports["http"])
        writer.write(b"GET /runs HTTP/1.1\r\nHost: x\r\n")
        writer.write_eof()
        half.append((reader, writer))
    for reader, _ in half:
        assert (await asyncio.wait_for(reader.read(), 10)).startswith(b"HTTP/1.1 400 ")
    # Half-open WebSocket: the handshake done, then the client shuts its side, no close frame.
    for _ in range(50):
        reader, writer = await asyncio.open_connection("127.0.0.1", target.ports["websocket"])
        writer.write(
            b"GET /v1/images HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101 ")
        writer.write_eof()
        half.append((reader, writer))

    async def counted() -> bool:
        after = await scrape(target)
        return (
            delta(before, after, "imgbench_http_refusals_total", server="api", status="400") >= 50
            and delta(before, after, "imgbench_disconnects_total", protocol="websocket") >= 50
        )

    await eventually(counted)
    await still_fine(target, "idle-connections")  # with the 300 idle sockets still open
    after = await scrape(target)
    assert delta(before, after, "imgbench_http_refusals_total", server="api", status="400") == 50
    assert delta(before, after, "imgbench_disconnects_total", protocol="websocket") == 50
    for _, writer in idle + half:
        writer.close()


# -- connection churn --------------------------------------------------------------------


async def test_connection_churn(target: Target) -> None:
    """300 WebSocket connections: half closed cleanly, half dropped (no close frame)."""
    before = await scrape(target)
    for i in range(300):
        ws = await connect(target.ws + "/v1/images", proxy=None)
        if i % 2:
            await ws.close()
        else:
            ws.transport.abort()  # the client vanishes
    async with grpc.aio.insecure_channel(target.grpc) as channel:
        await channel.channel_ready()
    for _ in range(100):  # gRPC channels opened and closed
        async with grpc.aio.insecure_channel(target.grpc) as channel:
            await asyncio.wait_for(channel.channel_ready(), 10)

    async def counted() -> bool:
        after = await scrape(target)
        return delta(before, after, "imgbench_disconnects_total", protocol="websocket") >= 150

    await eventually(counted)
    await still_fine(target, "churn")
    after = await scrape(target)
    # Exactly the dropped ones; a clean close is not a disconnect.
    assert delta(before, after, "imgbench_disconnects_total", protocol="websocket") == 150


# -- hostile HTTP requests -----------------------------------------------------------------


async def _raw_http(port: int, raw: bytes, *, eof: bool) -> bytes:
    """Send ``raw``, half-close if ``eof`` (websockets drops a half-closed handshake
    unanswered), and read the answer until the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        if eof:
            writer.write_eof()
        return await asyncio.wait_for(reader.read(), 15)
    finally:
        writer.close()


async def test_hostile_http_requests(target: Target) -> None:
    api, ws_port = target.ports["http"], target.ports["websocket"]
    cases = [
        (api, b"\x00\xff garbage\r\n\r\n", "400"),
        (api, b"GET /runs HTTP/1.1\r\nHost: x\r\n" + b"X: " + b"a" * 20_000 + b"\r\n\r\n", "400"),
        (api, b"POST /v1/subscriptions HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", "413"),
        (api, b"POST /v1/subscriptions HTTP/1.1\r\nContent-Length: +1\r\n\r\nx", "400"),
        (api, b"POST /v1/subscriptions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
         "501"),
        (api, b"GET /../../etc/passwd HTTP/1.1\r\n\r\n", "404"),
        (api, b"DELETE /runs HTTP/1.1\r\n\r\n", "405"),
        (api, b"GET /runs/" + b"%2e" * 3000 + b" HTTP/1.1\r\n\r\n", "404"),
        # WebSocket handshakes with mutated headers, and an unknown path.
        (ws_port, b"GET /v1/images HTTP/1.1\r\nHost: x\r\n\r\n", "426"),
        (ws_port, b"GET /v1/images HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nSec-WebSocket-Key: short\r\n"
                  b"Sec-WebSocket-Version: 13\r\n\r\n", "400"),
        (ws_port, b"GET /v1/images HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  b"Sec-WebSocket-Version: 7\r\n\r\n", "400"),
        (ws_port, b"GET /admin HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  b"Sec-WebSocket-Version: 13\r\n\r\n", "404"),
    ]  # fmt: skip
    before = await scrape(target)
    expected: dict[tuple[str, str], int] = {}
    for port, raw, status in cases:
        answer = await _raw_http(port, raw, eof=port == api)
        assert answer.split(b" ", 2)[1].decode() == status, (raw[:60], answer[:200])
        server = "api" if port == api else "websocket"
        expected[(server, status)] = expected.get((server, status), 0) + 1
    after = await scrape(target)
    for (server, status), count in expected.items():
        got = delta(before, after, "imgbench_http_refusals_total", server=server, status=status)
        assert got == count, (server, status, got)
    await still_fine(target, "hostile-http")
