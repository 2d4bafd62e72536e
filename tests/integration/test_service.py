"""The transmitter's service mode (docker compose): HTTP API and scheduling."""

from __future__ import annotations

import asyncio
import json

from imgbench.runtime.http import get_json, request
from transmitter.service import TransmitterService

from helpers.services import LiveReceiver


async def test_api_runs_a_comparison_and_refuses_a_second_one_meanwhile(
    live_receiver: LiveReceiver, tmp_path: object
) -> None:
    from pathlib import Path

    settings = live_receiver.transmitter_settings(
        images=3, delay=0.2, warmup=0, api_port=0, output=Path(str(tmp_path))
    )
    service = TransmitterService(settings)
    await service.start()
    try:
        port = service.port
        status, body = await get_json("127.0.0.1", port, "/healthz")
        assert status == 200 and body["status"] == "ok"
        status, body = await get_json("127.0.0.1", port, "/runs/latest")
        assert status == 404 and body["status"] == "none"

        status, _, raw = await request("127.0.0.1", port, "POST", "/runs")
        assert status == 202
        run_id = json.loads(raw)["run_id"]
        status, _, _ = await request("127.0.0.1", port, "POST", "/runs")
        assert status == 409  # one comparison at a time

        for _ in range(100):
            status, body = await get_json("127.0.0.1", port, "/runs/latest")
            if status == 200:
                break
            await asyncio.sleep(0.1)
        assert body["status"] == "ok" and body["run_id"] == run_id
        assert [r["protocol"] for r in body["runs"]] == ["websocket", "grpc"]
        assert all(r["figures"]["images"] == 3 for r in body["runs"])

        status, _headers, metrics = await request("127.0.0.1", port, "GET", "/metrics")
        assert status == 200
        text = metrics.decode()
        sent = 'imgbench_images_sent_total{direction="upload",mode="binary",protocol="websocket"}'
        assert f"{sent} 3.0" in text
        assert "imgbench_runs_in_progress 0.0" in text
        assert (Path(str(tmp_path)) / run_id / "results.json").exists()
    finally:
        await service.stop()


async def test_failed_run_is_reported_not_raised(tmp_path: object) -> None:
    from pathlib import Path

    from imgbench.config.settings import TransmitterSettings

    settings = TransmitterSettings().updated(
        ws_port=1, grpc_port=1, http_port=1, connect_timeout=0.3, api_port=0,
        output=Path(str(tmp_path)), images=1, warmup=0,
    )  # fmt: skip
    service = TransmitterService(settings)
    await service.start()
    try:
        await service.loop()  # run_interval 0: exactly one run, then return
        status, body = await get_json("127.0.0.1", service.port, "/runs/latest")
        assert status == 200
        assert body["status"] == "failed" and "cannot connect" in body["error"]
        status, body = await get_json("127.0.0.1", service.port, "/healthz")
        assert status == 200
    finally:
        await service.stop()


async def test_http_server_answers_bad_requests_with_a_status(live_receiver: LiveReceiver) -> None:
    port = live_receiver.server.ports["http"]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"NONSENSE\r\n\r\n")
    await writer.drain()
    assert (await reader.read()).startswith(b"HTTP/1.1 400")
    writer.close()
    status, _, _ = await request("127.0.0.1", port, "GET", "/nope")
    assert status == 404
    status, _, _ = await request("127.0.0.1", port, "POST", "/healthz")
    assert status == 405
    status, _body = await get_json("127.0.0.1", port, "/runs/unknown-run")
    assert status == 404
