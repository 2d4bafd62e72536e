"""POST /runs with a JSON body: workload overrides for that run, validated."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from imgbench.runtime.http import get_json, request
from transmitter.service import TransmitterService

from helpers.services import LiveReceiver


async def test_body_overrides_the_workload_and_bad_ones_get_400_naming_the_setting(
    live_receiver: LiveReceiver, tmp_path: Path
) -> None:
    settings = live_receiver.transmitter_settings(
        images=2, delay=0.0, warmup=0, api_port=0, output=tmp_path
    )
    service = TransmitterService(settings)
    await service.start()
    try:
        port = service.port
        for body, setting in (
            (b'{"images": 0}', "images"),
            (b'{"delay": "soon"}', "delay"),
            (b'{"image": "/etc/passwd"}', "image"),  # not overridable over the API
            (b'{"nonsense": 1}', "nonsense"),
        ):
            status, _, raw = await request("127.0.0.1", port, "POST", "/runs", body=body)
            assert status == 400, raw
            answer = json.loads(raw)
            assert answer["setting"] == setting and setting in answer["error"]
        status, _, raw = await request("127.0.0.1", port, "POST", "/runs", body=b"[1]")
        assert status == 400 and "JSON object" in json.loads(raw)["error"]
        assert service.current is None  # nothing started

        override = b'{"images": 10, "protocols": ["grpc", "websocket"]}'
        status, _, raw = await request("127.0.0.1", port, "POST", "/runs", body=override)
        assert status == 202, raw
        for _ in range(200):
            status, latest = await get_json("127.0.0.1", port, "/runs/latest")
            if status == 200:
                break
            await asyncio.sleep(0.1)
        assert latest["status"] == "ok"
        assert [r["protocol"] for r in latest["runs"]] == ["grpc", "websocket"]
        assert all(r["figures"]["images"] == 10 for r in latest["runs"])
        assert latest["settings"]["images"] == 10
        assert "run_interval" not in latest["settings"]  # service-only, serve is off here
        (verdict,) = latest["verdicts"]  # /runs/latest carries the verdict
        assert verdict["n"] == {"grpc/unary": 10, "websocket/binary": 10}
        assert settings.workload.images == 2  # the service's own settings are unchanged
    finally:
        await service.stop()
