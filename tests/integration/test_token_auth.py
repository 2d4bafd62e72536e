"""The bearer token over real sockets: strangers are refused and counted on every
transport, the holder of the token runs as before, and the transmitter says why.

Refusals: a WebSocket handshake without the token gets HTTP 401, a gRPC call
UNAUTHENTICATED, an HTTP API request 401 (``/healthz`` and ``/metrics`` stay open);
each is counted in ``imgbench_unauthenticated_requests_total{transport}``.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from prometheus_client import CollectorRegistry
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from imgbench.errors import ReceiverRefused, RunError
from imgbench.observe.metrics import TransmitterMetrics
from imgbench.runtime.http import get_json, request
from imgbench.security.guards import metadata
from imgbench.wire.names import SEND, SEND_STREAM, UPLOAD
from transmitter.compare import run_comparison
from transmitter.image import load_image
from transmitter.service import TransmitterService

from helpers.pki import TOKEN
from helpers.services import LiveReceiver, memory_tracing, start_receiver


def refusals(registry: CollectorRegistry, transport: str) -> float:
    value = registry.get_sample_value(
        "imgbench_unauthenticated_requests_total", {"transport": transport}
    )
    assert value is not None
    return value


@pytest.fixture
async def guarded() -> AsyncIterator[LiveReceiver]:
    """A receiver that requires :data:`TOKEN`."""
    receiver = await start_receiver(token=TOKEN)
    try:
        yield receiver
    finally:
        await receiver.server.stop(grace=1.0)


async def test_a_websocket_handshake_without_the_token_gets_401_and_is_counted(
    guarded: LiveReceiver,
) -> None:
    url = f"ws://127.0.0.1:{guarded.server.ports['websocket']}/v1/images"
    registry = guarded.metrics.registry
    for headers in (None, {"Authorization": "Bearer wrong-token-0123456789"},
                    {"Authorization": TOKEN}):  # fmt: skip
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url, proxy=None, additional_headers=headers, open_timeout=5):
                pass
        assert refused.value.response.status_code == 401
        assert refused.value.response.headers["WWW-Authenticate"].startswith("Bearer")
    # An unknown path is refused for the token first: strangers learn no paths.
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url.replace("/v1/images", "/nowhere"), proxy=None, open_timeout=5):
            pass
    assert refused.value.response.status_code == 401
    assert refusals(registry, "websocket") == 4
    async with connect(url, proxy=None, additional_headers={"Authorization": f"bearer {TOKEN}"},
                       open_timeout=5):  # fmt: skip
        pass  # the scheme is case-insensitive
    assert refusals(registry, "websocket") == 4


async def test_grpc_calls_without_the_token_end_unauthenticated_and_are_counted(
    guarded: LiveReceiver,
) -> None:
    registry = guarded.metrics.registry
    async with grpc.aio.insecure_channel(f"127.0.0.1:{guarded.server.ports['grpc']}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as unary:
            await channel.unary_unary(SEND, None, None)(b"\x00" * 1000, timeout=5)
        assert unary.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.aio.AioRpcError) as stream:
            call = channel.stream_stream(SEND_STREAM, None, None)(
                iter([b"x"]), metadata=(("authorization", "Bearer not-the-token-at-all"),)
            )
            async for _ in call:
                pass
        assert stream.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.aio.AioRpcError) as upload:
            await channel.stream_unary(UPLOAD, None, None)(iter([b"x"]), timeout=5)
        assert upload.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert refusals(registry, "grpc") == 3
        # With the token the call reaches the receiver (which refuses the junk itself).
        with pytest.raises(grpc.aio.AioRpcError) as junk:
            await channel.unary_unary(SEND, None, None)(b"junk", timeout=5,
                                                        metadata=metadata(TOKEN))  # fmt: skip
        assert junk.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert refusals(registry, "grpc") == 3
    # Nothing reached the core: no message was counted as rejected but the junk one.
    rejected = sum(
        s.value
        for m in registry.collect()
        if m.name == "imgbench_rejected_messages"
        for s in m.samples
        if s.name.endswith("_total")
    )
    assert rejected == 1


async def test_http_endpoints_with_run_data_or_state_require_the_token(
    guarded: LiveReceiver,
) -> None:
    port = guarded.server.ports["http"]
    closed = [("GET", "/runs"), ("GET", "/runs/some-run"), ("GET", "/stats"),
              ("POST", "/stats/reset-peak"), ("POST", "/v1/subscriptions")]  # fmt: skip
    for method, path in closed:
        status, headers, body = await request("127.0.0.1", port, method, path)
        assert status == 401, (method, path)
        assert headers["www-authenticate"].startswith("Bearer")
        assert b"run_ids" not in body
    assert refusals(guarded.metrics.registry, "http") == len(closed)
    for path in ("/healthz", "/metrics"):  # open on purpose (README "Security")
        status, _, _ = await request("127.0.0.1", port, "GET", path)
        assert status == 200, path
    status, body = await get_json("127.0.0.1", port, "/runs", token=TOKEN)
    assert status == 200 and body == {"run_ids": []}
    assert refusals(guarded.metrics.registry, "http") == len(closed)


async def test_with_the_token_a_comparison_runs_on_both_protocols(guarded: LiveReceiver) -> None:
    settings = guarded.transmitter_settings(token=TOKEN, images=2, grpc_mode="stream")
    provider, _ = memory_tracing()
    comparison = await run_comparison(settings, tracing=provider, metrics=TransmitterMetrics())
    assert [r.protocol for r in comparison.runs] == ["websocket", "grpc"]
    assert all(len(r.samples) == 2 for r in comparison.runs)
    # The receiver's CPU figures came through the guarded /stats.
    assert all("receiver_cpu_s" in r.costs for r in comparison.runs)
    assert comparison.settings["token"] is True and TOKEN not in repr(comparison.settings)
    status, body = await get_json("127.0.0.1", guarded.server.ports["http"], "/runs", token=TOKEN)
    assert status == 200 and body["run_ids"] == [comparison.run_id]
    for transport in ("websocket", "grpc", "http"):
        assert refusals(guarded.metrics.registry, transport) == 0


@pytest.mark.parametrize(("protocol", "grpc_mode"), [("websocket", "unary"), ("grpc", "unary"),
                                                      ("grpc", "stream")])  # fmt: skip
async def test_a_transmitter_without_the_token_is_refused_at_once_with_the_reason(
    guarded: LiveReceiver, protocol: str, grpc_mode: str
) -> None:
    settings = guarded.transmitter_settings(
        protocols=(protocol,), grpc_mode=grpc_mode, connect_timeout=20.0
    )
    provider, _ = memory_tracing()
    started = time.monotonic()
    with pytest.raises(RunError) as failed:
        await run_comparison(settings, tracing=provider, metrics=TransmitterMetrics(),
                             image=load_image(None))  # fmt: skip
    # A refusal, not a retry until the connect deadline.
    assert time.monotonic() - started < 10
    assert isinstance(failed.value.__cause__, ReceiverRefused), repr(failed.value)
    assert "missing or wrong bearer token" in str(failed.value)
    assert refusals(guarded.metrics.registry, protocol) >= 1


async def test_the_transmitter_command_prints_one_line_and_exits_1(
    guarded: LiveReceiver, tmp_path: Path
) -> None:
    ports = guarded.server.ports
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "imgbench.cli", "transmitter", "--receiver-host", "127.0.0.1",
        "--port", str(ports["websocket"]), "--grpc-port", str(ports["grpc"]),
        "--http-port", str(ports["http"]), "--images", "1", "--delay", "0",
        "--log-level", "error", "--output", str(tmp_path),
        env={"PATH": "/usr/bin:/bin", "IMGBENCH_TOKEN": "a-wrong-token-0123456789"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    text = err.decode()
    assert proc.returncode == 1, text
    assert "Traceback" not in text
    assert text.strip().splitlines() == [
        f"imgbench: run failed: the WebSocket receiver at ws://127.0.0.1:{ports['websocket']}"
        "/v1/images refused the connection (HTTP 401): missing or wrong bearer token"
        " (IMGBENCH_TOKEN)"
    ]
    assert refusals(guarded.metrics.registry, "websocket") == 1


async def test_the_transmitter_service_api_requires_the_token(
    guarded: LiveReceiver, tmp_path: Path
) -> None:
    settings = guarded.transmitter_settings(token=TOKEN, api_port=0, serve=True, output=tmp_path)
    metrics = TransmitterMetrics()
    service = TransmitterService(settings, metrics=metrics)
    await service.start()
    try:
        for method, path in (("POST", "/runs"), ("GET", "/runs/latest")):
            status, _, _ = await request("127.0.0.1", service.port, method, path)
            assert status == 401, path
        for path in ("/healthz", "/metrics"):
            status, _, _ = await request("127.0.0.1", service.port, "GET", path)
            assert status == 200, path
        assert refusals(metrics.registry, "http") == 2
        status, body = await get_json("127.0.0.1", service.port, "/runs/latest", token=TOKEN)
        assert status == 404 and body["status"] == "none"  # through, and nothing ran
    finally:
        await service.stop()


async def test_push_servers_refuse_a_subscriber_without_the_token(tmp_path: Path) -> None:
    """The push direction, mirrored: the transmitter serves and asks for the token; a
    receiver without it is refused on both transports, counted on the transmitter."""
    receiver = await start_receiver()  # no token: it subscribes without one
    try:
        metrics = TransmitterMetrics()
        provider, _ = memory_tracing()
        for protocol in ("websocket", "grpc"):
            settings = receiver.transmitter_settings(
                token=TOKEN, direction="push", protocols=(protocol,), connect_timeout=2.0
            )
            with pytest.raises(RunError):
                await run_comparison(settings, tracing=provider, metrics=metrics)
            assert refusals(metrics.registry, protocol) >= 1, protocol
        # The receiver saw both subscriptions refused, and says why.
        assert (
            receiver.metrics.registry.get_sample_value(
                "imgbench_subscription_refusals_total", {"reason": "unauthenticated"}
            )
            == 2
        )
    finally:
        await receiver.server.stop(grace=1.0)
