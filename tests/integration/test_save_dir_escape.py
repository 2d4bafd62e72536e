"""RECEIVER_SAVE_DIR: a run id can never make the receiver write outside the save directory."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import pytest
from websockets.asyncio.client import connect

from imgbench import wire

from helpers.services import start_receiver


def _meta(run_id: str, protocol: str, mode: str) -> wire.ImageMeta:
    return wire.ImageMeta(
        run_id=run_id, protocol=protocol, mode=mode, sequence=0, total=1,
        send_time_ns=time.monotonic_ns(), clock=wire.Clock.CLOCK_MONOTONIC,
        content_type="image/png", sha256=wire.digest(b"payload"),
    )  # fmt: skip


def _all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("run_id", ["..", ".", "...", ".hidden"])
@pytest.mark.parametrize("protocol", ["websocket", "grpc"])
async def test_dot_run_ids_are_refused_and_nothing_is_written(
    tmp_path: Path, run_id: str, protocol: str
) -> None:
    save = tmp_path / "a" / "save"
    save.mkdir(parents=True)
    receiver = await start_receiver(save_dir=save)
    try:
        if protocol == "websocket":
            raw = wire.encode_image(_meta(run_id, protocol, "binary"), b"payload")
            url = f"ws://127.0.0.1:{receiver.server.ports['websocket']}/v1/images"
            async with connect(url, proxy=None) as ws:
                await ws.send(raw)
                ack = wire.decode_ack(await ws.recv(decode=False))
            assert ack.error.startswith("invalid_field"), ack.error
        else:
            raw = wire.encode_image(_meta(run_id, protocol, "unary"), b"payload")
            target = f"127.0.0.1:{receiver.server.ports['grpc']}"
            async with grpc.aio.insecure_channel(target) as channel:
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await channel.unary_unary("/imgbench.v1.Receiver/Send", None, None)(raw)
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "run_id" in (info.value.details() or "")
        await receiver.server.core.drain()
        value = receiver.metrics.registry.get_sample_value(
            "imgbench_rejected_messages_total", {"protocol": protocol, "reason": "invalid_field"}
        )
        assert value == 1
        assert receiver.server.core.run_ids() == []
    finally:
        await receiver.server.stop(grace=1.0)
    # Nothing anywhere under tmp_path: not in the save dir, not one or two levels above it.
    assert _all_files(tmp_path) == []


def test_save_path_is_checked_to_stay_under_the_save_dir(tmp_path: Path) -> None:
    """Defence in depth: even a run id that passed decoding cannot leave the save dir."""
    from receiver.core import save_path

    meta = _meta("ok-run", "grpc", "unary")
    assert save_path(tmp_path, meta).parent == (tmp_path / "ok-run").resolve()
    for bad in ("..", ".", "../x"):
        with pytest.raises(ValueError):
            save_path(tmp_path, _meta(bad, "grpc", "unary"))
