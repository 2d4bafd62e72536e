"""Run records are bounded per run id, and eviction costs O(1) whatever the table holds."""

from __future__ import annotations

import time

from websockets.asyncio.client import connect

from imgbench import wire

from helpers.services import start_receiver


def _meta(run_id: str, repetition: int, **kw: object) -> wire.ImageMeta:
    fields: dict[str, object] = dict(
        run_id=run_id, protocol="websocket", mode="binary", sequence=0, total=1,
        send_time_ns=time.monotonic_ns(), clock=wire.Clock.CLOCK_MONOTONIC,
        content_type="image/png", sha256=wire.digest(b"p"), repetition=repetition,
    )  # fmt: skip
    fields.update(kw)
    return wire.ImageMeta(**fields)  # type: ignore[arg-type]


async def test_repetitions_of_one_run_id_are_bounded() -> None:
    receiver = await start_receiver(max_records_per_run=5)
    try:
        url = f"ws://127.0.0.1:{receiver.server.ports['websocket']}/v1/images"
        errors = []
        async with connect(url, proxy=None) as ws:
            for repetition in range(8):
                await ws.send(wire.encode_image(_meta("many-reps", repetition), b"p"))
                errors.append(wire.decode_ack(await ws.recv(decode=False)).error)
        assert errors[:5] == [""] * 5
        assert all(e.startswith("records_full") for e in errors[5:]), errors
        assert "RECEIVER_MAX_RECORDS_PER_RUN" in errors[5]
        assert len(receiver.server.core.run("many-reps")) == 5
        value = receiver.metrics.registry.get_sample_value(
            "imgbench_rejected_messages_total", {"protocol": "websocket", "reason": "records_full"}
        )
        assert value == 3
    finally:
        await receiver.server.stop(grace=1.0)


async def test_finished_runs_are_evicted_oldest_first_and_counted() -> None:
    receiver = await start_receiver(max_runs=3)
    try:
        url = f"ws://127.0.0.1:{receiver.server.ports['websocket']}/v1/images"
        async with connect(url, proxy=None) as ws:
            # "live" stays open (2 images announced, 1 sent); the others finish.
            await ws.send(wire.encode_image(_meta("live", 0, total=2), b"p"))
            await ws.recv()
            for run_id in ("done-1", "done-2", "done-3", "done-4"):
                await ws.send(wire.encode_image(_meta(run_id, 0), b"p"))
                assert wire.decode_ack(await ws.recv(decode=False)).error == ""
            # The live run kept its slot; the oldest finished ones went.
            assert receiver.server.core.run_ids() == ["live", "done-3", "done-4"]
            # A late message for an evicted run is refused, not recorded as a new empty run.
            await ws.send(wire.encode_image(_meta("done-1", 1), b"p"))
            assert wire.decode_ack(await ws.recv(decode=False)).error.startswith("run_evicted")
            # The live run still completes.
            await ws.send(wire.encode_image(_meta("live", 0, total=2, sequence=1), b"p"))
            assert wire.decode_ack(await ws.recv(decode=False)).error == ""
        assert receiver.server.core.run("live")[0]["complete"] is True
        value = receiver.metrics.registry.get_sample_value(
            "imgbench_runs_evicted_total", {"state": "finished"}
        )
        assert value == 2
    finally:
        await receiver.server.stop(grace=1.0)


def test_eviction_is_constant_time_per_new_run() -> None:
    """Opening a run in a full table costs the same with 10 or 10,000 kept runs."""
    from imgbench.observe.metrics import ReceiverMetrics
    from receiver.runs import RunRecord, RunTable

    def per_run_seconds(max_runs: int) -> float:
        table = RunTable(
            max_runs=max_runs, max_records_per_run=10, idle_timeout_s=60, metrics=ReceiverMetrics()
        )

        def open_and_finish(i: int) -> None:
            meta = _meta(f"r{i}", 0)
            group, _ = table.lookup(meta, i)
            table.add(group, ("websocket", "binary", 0), RunRecord(meta.run_id, "", "", 0, 1))
            table.closed(group)

        for i in range(max_runs):  # fill
            open_and_finish(i)
        n = 20_000
        start = time.perf_counter()
        for i in range(max_runs, max_runs + n):  # every one evicts
            open_and_finish(i)
        return (time.perf_counter() - start) / n

    small, large = per_run_seconds(10), per_run_seconds(10_000)
    # A scan of every record would make the large table ~1000x slower; allow noise.
    assert large < small * 5, (small, large)
