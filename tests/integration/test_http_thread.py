"""The HTTP API server runs on its own thread, and its CPU time is accounted apart."""

from __future__ import annotations

import threading
import time

from imgbench.runtime import resources
from imgbench.runtime.http import HttpServer, Request, Response, request


async def test_thread_safe_routes_run_on_the_api_thread_and_their_cpu_is_excluded() -> None:
    seen: dict[str, int] = {}

    async def burn(_: Request) -> Response:
        seen["burn"] = threading.get_ident()
        end = time.thread_time() + 0.05  # 50 ms of CPU on the serving thread
        while time.thread_time() < end:
            pass
        return Response.text("ok\n")

    async def stateful(_: Request) -> Response:
        seen["stateful"] = threading.get_ident()
        return Response.text("ok\n")

    server = HttpServer(
        {("GET", "/metrics"): burn, ("GET", "/state"): stateful}, "127.0.0.1", 0, read_timeout=10.0
    )
    await server.start()
    try:
        api_before, cpu_before = resources.api_cpu_seconds(), resources.cpu_seconds()
        for _ in range(4):
            status, _, _ = await request("127.0.0.1", server.port, "GET", "/metrics")
            assert status == 200
        api = resources.api_cpu_seconds() - api_before
        cpu = resources.cpu_seconds() - cpu_before
        status, _, _ = await request("127.0.0.1", server.port, "GET", "/state")
        assert status == 200
    finally:
        await server.stop()
    # The 200 ms burned serving /metrics is API time, and the process spent it too.
    assert 0.2 <= api <= cpu + 0.01, (api, cpu)
    # Transport CPU (process minus API) saw little of it.
    assert cpu - api < 0.1, (api, cpu)
    assert seen["burn"] != threading.get_ident()  # served on the HTTP thread
    assert seen["stateful"] == threading.get_ident()  # handed to the owner's loop
    # A stopped server's thread keeps its CPU in the total (monotonic).
    assert resources.api_cpu_seconds() >= api_before + api


async def test_a_stuck_service_loop_fails_healthz_while_metrics_still_answer() -> None:
    """/healthz runs on the service's loop (liveness means that loop serves); /metrics
    runs on the HTTP thread."""
    import asyncio
    import concurrent.futures
    import urllib.error
    import urllib.request

    async def ok(_: Request) -> Response:
        return Response.text("ok\n")

    server = HttpServer(
        {("GET", "/healthz"): ok, ("GET", "/metrics"): ok}, "127.0.0.1", 0, read_timeout=10.0
    )
    await server.start()
    base = f"http://127.0.0.1:{server.port}"

    def get(path: str) -> int | str:
        try:
            with urllib.request.urlopen(base + path, timeout=0.5) as reply:
                return int(reply.status)
        except (TimeoutError, urllib.error.URLError) as exc:
            return type(exc).__name__

    try:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            healthz = pool.submit(get, "/healthz")
            metrics = pool.submit(get, "/metrics")
            time.sleep(1.5)  # noqa: ASYNC251 (on purpose: the service's loop is stuck)
            results = healthz.result(), metrics.result()
        assert results[1] == 200
        assert results[0] != 200, results
        # Unstuck, the loop answers again.
        status, _, _ = await request("127.0.0.1", server.port, "GET", "/healthz")
        assert status == 200
    finally:
        await asyncio.wait_for(server.stop(), 15)
