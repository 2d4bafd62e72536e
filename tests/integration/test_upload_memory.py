"""Chunked uploads are bounded in memory: count, bytes reserved, and stall time."""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from imgbench import wire
from imgbench.config.option import MIB
from imgbench.runtime.http import request
from imgbench.v1.imgbench_pb2 import ImageChunk

from helpers.services import receiver_process, start_receiver

#: The documented bound (README "Bad input", memory bound for chunked uploads), a
#: formula of the settings and of grpc's HTTP/2 window W: peak RSS <=
#: RECEIVER_MAX_UPLOAD_BUFFER_BYTES (image buffers, exactly: asserted on RssShmem)
#: + BASE + streams x (W + PER_STREAM). W is IMGBENCH_GRPC_LOOKAHEAD_BYTES (grpc's
#: 65535 when unset) with BDP probing off; with it on (the default) grpc core grows W
#: with its BDP estimate, bounded by no setting (at most 1 GiB), so the test reads the
#: largest W grpc announced from its flowctl trace.
UPLOAD_BUFFER = 512 * MIB
#: The interpreter, libraries and grpc core's fixed memory: 77-94 MiB measured.
BASE = 128 * MIB
#: Per open stream on top of W: the stream's own window increment (grpc core's
#: kMaxWindowDelta, 1 MiB) and the 1 MiB message being copied out of grpc.
PER_STREAM = 2 * MIB
GRPC_DEFAULT_WINDOW = 65535
_WINDOW_TRACE = re.compile(rb"UPDATE SETTING INITIAL_WINDOW_SIZE from \d+ to (\d+)")


def _meta(run_id: str) -> wire.ImageMeta:
    return wire.ImageMeta(
        run_id=run_id, protocol="grpc", mode="chunked", sequence=0, total=1,
        send_time_ns=time.monotonic_ns(), clock=wire.Clock.CLOCK_MONOTONIC,
        content_type="application/octet-stream", sha256=bytes(32),
    )  # fmt: skip


def _vm_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


async def _stalled_upload(
    target: str, run_id: str, size: int, stall: asyncio.Event
) -> grpc.StatusCode | None:
    """Announce ``size`` bytes, send all but the last MiB, then wait (a stalled client)."""
    chunk = os.urandom(MIB)

    async def chunks() -> AsyncIterator[bytes]:
        header = ImageChunk(
            header=wire.ImageMessage(**_fields(_meta(run_id))), total_bytes=size, data=chunk
        )
        yield header.SerializeToString()
        for _ in range(size // MIB - 2):
            yield ImageChunk(data=chunk).SerializeToString()
        await stall.wait()

    async with grpc.aio.insecure_channel(
        target, options=[("grpc.max_send_message_length", 8 * MIB)]
    ) as channel:
        try:
            await channel.stream_unary("/imgbench.v1.Receiver/Upload", None, None)(chunks())
        except grpc.aio.AioRpcError as exc:
            return exc.code()
    return None


def _fields(meta: wire.ImageMeta) -> dict[str, object]:
    return {
        "run_id": meta.run_id, "protocol": meta.protocol, "mode": meta.mode,
        "sequence": meta.sequence, "total": meta.total, "send_time_ns": meta.send_time_ns,
        "clock": meta.clock, "content_type": meta.content_type, "sha256": meta.sha256,
    }  # fmt: skip


def _largest_window(trace: bytes, bdp_probe: bool) -> int:
    """The largest per-stream receive window (bytes) grpc core announced in ``trace``."""
    grown = [int(w) for w in _WINDOW_TRACE.findall(trace)]
    # With BDP probing grpc always retunes the initial window; none found means the
    # trace format changed, not that the window stayed small.
    assert grown or not bdp_probe, "no INITIAL_WINDOW_SIZE update in grpc's flowctl trace"
    return max([GRPC_DEFAULT_WINDOW, *grown])


@pytest.mark.parametrize("bdp_probe", [True, False], ids=["bdp-probe", "no-bdp-probe"])
async def test_six_stalled_256_mib_uploads_stay_under_the_memory_bound(
    tmp_path: Path, bdp_probe: bool
) -> None:
    uploads, size = 6, 256 * MIB
    trace = tmp_path / "receiver.stderr"
    with receiver_process(
        # The initial window grpc's own (65535), whatever the environment says.
        tmp_path, "--grpc-bdp-probe", str(bdp_probe).lower(), "--grpc-lookahead-bytes", "0",
        env={"GRPC_TRACE": "flowctl", "GRPC_VERBOSITY": "info"}, stderr=trace,
    ) as receiver:  # fmt: skip
        stall = asyncio.Event()
        tasks = [
            asyncio.create_task(_stalled_upload(receiver.grpc, f"stall-{i}", size, stall))
            for i in range(uploads)
        ]
        # The refused uploads end at once; the accepted ones send all but 2 MiB, stall.
        accepted = UPLOAD_BUFFER // size
        refused: list[grpc.StatusCode | None] = []
        for finished in asyncio.as_completed(tasks, timeout=120):
            refused.append(await finished)
            if len(refused) == uploads - accepted:
                break
        # Until the accepted ones reach their stall (a fixed wait missed it under load).
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 120
        while _vm_kib(receiver.pid, "RssShmem") * 1024 < accepted * (size - 2 * MIB):
            assert loop.time() < deadline, _vm_kib(receiver.pid, "RssShmem") // 1024
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)
        peak = _vm_kib(receiver.pid, "VmHWM") * 1024
        # The part RECEIVER_MAX_UPLOAD_BUFFER_BYTES bounds, exactly: image buffers are
        # anonymous shared mappings, their resident pages RssShmem (README "Bad input").
        buffers = _vm_kib(receiver.pid, "RssShmem") * 1024
        stall.set()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 60)
        # The receiver answers RESOURCE_EXHAUSTED; a client still pushing 1 MiB chunks
        # when the answer comes may instead see grpc core's INTERNAL (the receiver's
        # counter below is the proof of what it did).
        assert all(
            c in (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.INTERNAL) for c in refused
        ), refused
        _, _, body = await request(
            "127.0.0.1", receiver.ports["http"], "GET", "/metrics", timeout=5
        )
        text = body.decode()
        assert 'imgbench_rejected_messages_total{protocol="grpc",reason="uploads_busy"} 4.0' in text
        window = _largest_window(trace.read_bytes(), bdp_probe)
        bound = UPLOAD_BUFFER + BASE + uploads * (window + PER_STREAM)
        print(
            f"receiver peak RSS with 6 stalled 256 MiB uploads: {peak / MIB:.0f} MiB, of which"
            f" image buffers {buffers / MIB:.0f} MiB; largest grpc window"
            f" {window / MIB:.2f} MiB; bound {bound / MIB:.0f} MiB;"
            f" load average {os.getloadavg()[0]:.1f}"
        )
        assert buffers <= UPLOAD_BUFFER, buffers / MIB
        assert peak <= bound, (peak / MIB, buffers / MIB, window / MIB)
        # Still healthy afterwards: a real chunked upload goes through.
        data = os.urandom(3 * MIB)
        meta = wire.ImageMeta(**{**_fields(_meta("after-stall")), "sha256": wire.digest(data)})  # type: ignore[arg-type]
        async with grpc.aio.insecure_channel(receiver.grpc) as channel:
            ack = wire.decode_ack(
                await channel.stream_unary("/imgbench.v1.Receiver/Upload", None, None)(
                    iter(wire.encode_chunks(meta, data, MIB))
                )
            )
        assert ack.checksum_ok and ack.bytes_received == len(data)


async def test_a_stalled_upload_is_ended_and_releases_its_reservation() -> None:
    receiver = await start_receiver(upload_idle_timeout=0.5, max_uploads=1)
    try:
        target = f"127.0.0.1:{receiver.server.ports['grpc']}"
        stall = asyncio.Event()
        code = await asyncio.wait_for(_stalled_upload(target, "stall", 4 * MIB, stall), 30)
        assert code == grpc.StatusCode.DEADLINE_EXCEEDED
        value = receiver.metrics.registry.get_sample_value(
            "imgbench_rejected_messages_total", {"protocol": "grpc", "reason": "upload_stalled"}
        )
        assert value == 1
        assert receiver.metrics.registry.get_sample_value("imgbench_upload_buffer_bytes") == 0
        # Not a disconnect: the receiver ended it.
        assert receiver.metrics.registry.get_sample_value(
            "imgbench_disconnects_total", {"protocol": "grpc"}
        ) in (None, 0.0)
    finally:
        await receiver.server.stop(grace=1.0)


@pytest.mark.parametrize("case", ["oversend", "repeated_header"])
async def test_oversend_and_repeated_header_count_once(case: str) -> None:
    receiver = await start_receiver()
    try:
        target = f"127.0.0.1:{receiver.server.ports['grpc']}"
        first, second = wire.encode_chunks(_meta(case), b"x" * 2000, 1000)
        extra = second if case == "oversend" else first
        async with grpc.aio.insecure_channel(target) as channel:
            upload = channel.stream_unary("/imgbench.v1.Receiver/Upload", None, None)
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await upload(iter([first, second, extra] if case == "oversend" else [first, extra]))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        reg = receiver.metrics.registry
        assert (
            reg.get_sample_value(
                "imgbench_rejected_messages_total", {"protocol": "grpc", "reason": "invalid_field"}
            )
            == 1
        )
        assert reg.get_sample_value("imgbench_disconnects_total", {"protocol": "grpc"}) in (
            None,
            0.0,
        )
    finally:
        await receiver.server.stop(grace=1.0)


async def test_an_ended_upload_gives_its_memory_back_with_its_reservation(tmp_path: Path) -> None:
    """Waves of stalled uploads, each ended by the idle timeout: the receiver's memory must
    return with each reservation. Before, an ended upload's buffer stayed resident (held by
    the exception's traceback until the cyclic GC ran) while its reservation was free
    again, so each wave added its size on top of RECEIVER_MAX_UPLOAD_BUFFER_BYTES."""
    size, waves = 64 * MIB, 3
    with receiver_process(
        tmp_path, "--max-image-bytes", str(size), "--max-upload-buffer-bytes", str(size),
        "--upload-idle-timeout", "1",
    ) as receiver:  # fmt: skip
        held: list[int] = []
        for wave in range(waves):
            code = await asyncio.wait_for(
                _stalled_upload(receiver.grpc, f"wave-{wave}", size, asyncio.Event()), 60
            )
            assert code == grpc.StatusCode.DEADLINE_EXCEEDED, code
            # Image buffers are anonymous shared mappings (imgbench.wire.chunks): their
            # resident pages are exactly RssShmem (heap and grpc's buffers are not). The
            # client may see the status before the handler's cleanup ran: wait up to 2 s.
            for _ in range(40):
                if _vm_kib(receiver.pid, "RssShmem") <= 4096:
                    break
                await asyncio.sleep(0.05)
            held.append(_vm_kib(receiver.pid, "RssShmem") * 1024)
        print(f"image buffers resident after each ended upload: {[h // MIB for h in held]} MiB")
        # Before the fix: [62, 124, 186] MiB (each wave's buffer kept until the GC ran).
        assert max(held) < 4 * MIB, [h // MIB for h in held]
