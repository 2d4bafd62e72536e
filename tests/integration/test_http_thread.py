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

    server = HttpServer({("GET", "/metrics"): burn, ("GET", "/state"): stateful}, "127.0.0.1", 0)
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
