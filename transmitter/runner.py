"""The harness: drives any :class:`~transmitter.senders.Sender` the same way.

Per protocol run: connect (not timed), send the warm-up images, then the
measured images on the configured schedule, then close. The timed window
(send-start stamp to the receiver's receive-complete) holds as little as
measuring allows, the same on every transport: in the binary modes (one
ImageMessage per image) the header is serialised before the stamp but for the
send time, which is written into the message just after it
(:class:`imgbench.wire.HeadTemplate`); the json and chunked modes serialise
the whole message after it (:data:`WHOLE_MESSAGE_MODES`: the json mode's base64
cost is what it shows).

Clock probes (:mod:`transmitter.probes`): a group before the first measured
image (after the warm-up), one in each pause between images when it fits in
the first half of the pause (right after the Ack, so the rest of the pause
stays idle; never inside a timed window) unless the groups so far found the
clocks shared (then the pauses stay empty: their groups could not change the
figures), and one after the last image; the
run's samples are then corrected with the estimate (unchanged on a shared
clock) and ``ProtocolRun.clock`` says which.

Schedules:

* closed loop (``in_flight == 1``, the default): send, wait for the ack, sleep
  ``delay``, send the next. Nothing queues; scheduled start == send start.
* burst (``in_flight > 1``): image *i* is scheduled at ``t0 + i * delay`` and
  waits for one of ``in_flight`` slots. Transmission time counts from the
  scheduled start, and the wait is reported separately as queue time.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, NoReturn

import structlog
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, SpanKind, Tracer
from opentelemetry.util.types import Attributes

from imgbench import wire
from imgbench.config.settings import TransmitterSettings
from imgbench.errors import ClockError, ImageLost, IntegrityError, ReceiverRefused, RunError
from imgbench.measure.results import NS, ProtocolRun, Sample, compute_figures
from imgbench.observe.logs import debug_enabled, get_logger
from imgbench.observe.metrics import TransmitterMetrics
from imgbench.observe.spans import SpanStarter, current
from imgbench.observe.tracing import span_attributes, span_kinds, traceparent
from imgbench.runtime import resources
from imgbench.runtime.http import get_json, request
from imgbench.wire import Clock, ImageMeta
from imgbench.wire.names import PUSH_MODE, direction_of
from transmitter.image import Image
from transmitter.probes import ClockProber
from transmitter.senders import (
    Payload,
    Sender,
    largest_message,
    payload_size,
    transmitter_tls,
)

log = get_logger("transmitter")
#: Modes whose message is serialised whole after the send-start stamp: the json mode's
#: base64 encoding (what that mode shows) and the chunked mode's pieces count in its
#: figures. The other modes send one ImageMessage whose header is built before it.
WHOLE_MESSAGE_MODES: Final = frozenset({"json", "chunked"})
Progress = Callable[[str, int], None]


def new_run_id() -> str:
    """Sortable, unique: UTC time plus 8 random hex digits."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]


def protocol_order(protocols: tuple[str, ...], repetition: int) -> tuple[str, ...]:
    """ABBA ordering: reversed on repetitions 1 and 2 of every 4 (0-based).

    Over each block of four repetitions every protocol runs first and last
    equally often, so linear drift and order effects cancel.
    """
    return protocols[::-1] if repetition % 4 in (1, 2) else protocols


@dataclass(frozen=True, slots=True)
class RunKey:
    """Identifies one protocol run on the wire (with the protocol and mode).

    ``run_span`` is the run span's context: each image's trace links to it.
    """

    run_id: str
    repetition: int
    run_span: trace.SpanContext | None = None


@dataclass
class Harness:
    settings: TransmitterSettings
    tracer: Tracer
    metrics: TransmitterMetrics
    progress: Progress | None = None
    #: The per-image spans, started without the SDK's per-span machinery (same spans).
    _spans: SpanStarter = dataclasses.field(init=False, repr=False)
    #: :meth:`_peer`'s attributes by (protocol, mode).
    _peers: dict[tuple[str, str], dict[str, str | int]] = dataclasses.field(
        init=False, repr=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        self._spans = SpanStarter(self.tracer)

    async def run_protocol(
        self,
        sender: Sender,
        image: Image,
        run_id: str,
        *,
        repetition: int = 0,
        position: int = 0,
    ) -> ProtocolRun:
        """One protocol's run; raises :class:`RunError` when an image is lost or corrupted."""
        s = self.settings
        protocol, mode = sender.protocol, sender.mode
        result = ProtocolRun(
            protocol=protocol,
            mode=mode,
            compression=s.workload.compression,
            images=s.workload.images,
            warmup=s.workload.warmup,
            delay_s=s.workload.delay,
            in_flight=s.workload.in_flight,
            repetition=repetition,
            position=position,
            image_bytes=image.size,
            message_bytes=0,
            started_at=datetime.now(UTC).isoformat(),
            direction=direction_of(mode),
        )
        attributes: Attributes = {
            **self._peer(protocol, mode),
            "imgbench.protocol": protocol,
            "imgbench.mode": mode,
            "imgbench.run_id": run_id,
            "imgbench.repetition": repetition,
            "imgbench.images": s.workload.images,
            "imgbench.bytes": image.size,
        }
        with (
            structlog.contextvars.bound_contextvars(
                protocol=protocol, mode=mode, run_id=run_id, repetition=repetition
            ),
            # The run span is a trace of its own (INTERNAL: local orchestration); each
            # image is another trace that links to it (see _send and the README).
            self._span(f"{protocol} run", attributes) as span,
        ):
            run_ctx = span.get_span_context()
            key = RunKey(run_id, repetition, run_ctx if run_ctx.is_valid else None)
            # Every line of this run (image lines too) names the run's trace.
            run_trace = {"run_trace_id": format(run_ctx.trace_id, "032x")} if key.run_span else {}
            with structlog.contextvars.bound_contextvars(**run_trace):
                await self._run_body(sender, image, key, result)
            figures = compute_figures(result.samples)
            last_ack = (
                max(x.ack_ns for x in result.samples) - min(x.scheduled_ns for x in result.samples)
            ) / NS
            self.metrics.run_completed(protocol, mode, figures, last_ack)
            self.metrics.run.clock_estimated(protocol, mode, result.clock)
            # Inside the run span: the line carries the run's trace id.
            log.info(
                "run completed",
                protocol=protocol,
                mode=mode,
                run_id=run_id,
                clock=result.clock["status"],
                clock_offset_ns=result.clock.get("offset_ns"),
                clock_bound_ns=result.clock.get("bound_ns"),
                images=figures.images,
                total_transfer_s=round(figures.total_transfer_s, 6),
                cumulative_transmission_s=round(figures.cumulative_transmission_s, 6),
                median_transmission_s=round(figures.transmission.p50, 6),
                median_round_trip_s=round(figures.round_trip.p50, 6),
            )
        return result

    async def _run_body(
        self, sender: Sender, image: Image, key: RunKey, result: ProtocolRun
    ) -> None:
        """Connect, warm up, send the measured images, close; fills ``result``."""
        s = self.settings
        work = s.workload
        # The connection belongs to the run: its handshake carries the run span's context.
        run_span = trace.get_current_span()
        await sender.connect(time.monotonic() + work.connect_timeout, traceparent(run_span))
        prober = ClockProber(
            sender, key.run_id, key.repetition, total=work.images, timeout_s=work.image_timeout
        )
        try:
            for i in range(work.warmup):
                if i:
                    await asyncio.sleep(work.delay)
                result.warmup_samples.append(await self._send(sender, image, key, i, warmup=True))
            before_group = time.monotonic()
            await prober.group()
            if work.warmup:
                await asyncio.sleep(max(0.0, work.delay - (time.monotonic() - before_group)))
            before = await self._costs_snapshot(start=True)
            result.samples = await self._measured(sender, image, key, prober)
            result.costs = _costs(before, await self._costs_snapshot(start=False), result)
            await prober.group()
            await prober.finish()
        finally:
            await sender.close()
        result.samples, result.clock = _corrected(result.samples, prober)
        result.message_bytes = result.samples[0].message_bytes

    async def _measured(
        self, sender: Sender, image: Image, key: RunKey, prober: ClockProber
    ) -> list[Sample]:
        s = self.settings
        work = s.workload
        if work.in_flight == 1:
            samples = []
            for i in range(work.images):
                if i:
                    # The pause: probes first (right after the Ack), within its first half;
                    # none once the clocks are known to be one (ClockProber.shared).
                    pause_start = time.monotonic()
                    if work.delay > 0 and not prober.shared:
                        await prober.group(budget_s=work.delay / 2)
                    await asyncio.sleep(max(0.0, work.delay - (time.monotonic() - pause_start)))
                samples.append(await self._send(sender, image, key, i))
            return samples
        # Burst: sends overlap, so there is no pause without a timed window in it:
        # only the groups before the first and after the last image.
        slots = asyncio.Semaphore(work.in_flight)
        t0 = time.monotonic_ns()

        async def one(i: int) -> Sample:
            scheduled = t0 + int(i * work.delay * NS)
            await asyncio.sleep(max(0.0, (scheduled - time.monotonic_ns()) / NS))
            async with slots:
                return await self._send(sender, image, key, i, scheduled_ns=scheduled)

        tasks = [asyncio.create_task(one(i)) for i in range(work.images)]
        try:
            return list(await asyncio.gather(*tasks))
        finally:
            for task in tasks:
                task.cancel()

    async def _send(
        self,
        sender: Sender,
        image: Image,
        key: RunKey,
        sequence: int,
        *,
        warmup: bool = False,
        scheduled_ns: int = 0,
    ) -> Sample:
        s = self.settings
        work = s.workload
        # Outside the timed window and the image's span: a connection the receiver
        # closed while idle is opened again first (gRPC; a no-op when it is open).
        await sender.ready(time.monotonic() + work.connect_timeout)
        protocol, mode = sender.protocol, sender.mode
        kind = "warm-up image" if warmup else "image"
        with (
            structlog.contextvars.bound_contextvars(sequence=sequence, warmup=warmup),
            self._image_span(protocol, mode, key, sequence, image.size, warmup) as span,
        ):
            # Everything that does not need the send-start stamp is done before it: the
            # metadata, and in the binary modes (one ImageMessage per image) the header
            # serialised but for the send time; the window holds writing the send time
            # into the message and the transport's send, as close to the bare library's
            # as measuring allows (README "What each figure means").
            meta = ImageMeta(
                run_id=key.run_id,
                repetition=key.repetition,
                protocol=protocol,
                mode=mode,
                sequence=sequence,
                total=work.images,
                send_time_ns=0,  # the stamp, set below
                clock=Clock.CLOCK_MONOTONIC,
                content_type=image.content_type,
                sha256=image.sha256,
                traceparent=traceparent(span),
                warmup=warmup,
                scheduled_time_ns=scheduled_ns,
            )
            whole = mode in WHOLE_MESSAGE_MODES
            # The message but for its send time, in the sender's buffer (binary modes).
            template = stamp_into = None
            if not whole:
                template = wire.HeadTemplate.of(meta, image.data)
                stamp_into = sender.prepare(template, image.data)
            try:
                # asyncio.timeout, not wait_for: wait_for wraps the send in a new Task
                # that starts only on a later loop iteration, inside the timed window.
                # Entered before the stamp: its set-up is not in the window either.
                async with asyncio.timeout(work.image_timeout):
                    send_ns = time.monotonic_ns()
                    payload: Payload
                    if stamp_into is not None:
                        payload = stamp_into(send_ns)
                        # What goes on the wire, padding included; message_bytes (below,
                        # after the window) is the ImageMessage's own size.
                        message_bytes = largest = payload_size(payload)
                    else:
                        payload = self._whole_message(mode, meta, send_ns, image.data)
                        message_bytes, largest = payload_size(payload), largest_message(payload)
                    if largest > s.transport.max_message_bytes:
                        self._too_large(protocol, mode, largest)
                    raw_ack = await sender.send(payload)
            except TimeoutError as exc:
                self.metrics.errors.labels(protocol, "timeout").inc()
                raise ImageLost(
                    f"{protocol}/{mode}: no ack for {kind} {sequence} within {work.image_timeout} s"
                ) from exc
            except ReceiverRefused as exc:
                self.metrics.errors.labels(protocol, "rejected").inc()
                raise ReceiverRefused(
                    f"{protocol}/{mode}: receiver refused {kind} {sequence}: {exc}"
                ) from exc
            except ImageLost as exc:
                self.metrics.errors.labels(protocol, "disconnect").inc()
                raise ImageLost(f"{protocol}/{mode}: {kind} {sequence} lost: {exc}") from exc
            ack_ns = time.monotonic_ns()
            if template is not None:
                message_bytes = template.size(send_ns, image.data)
            ack = wire.decode_ack(raw_ack)
            if ack.error:
                self.metrics.errors.labels(protocol, "rejected").inc()
                raise ReceiverRefused(
                    f"{protocol}/{mode}: receiver refused {kind} {sequence}: {ack.error}"
                )
            if not ack.checksum_ok or ack.bytes_received != image.size or ack.sequence != sequence:
                self.metrics.errors.labels(protocol, "integrity").inc()
                span.set_status(trace.Status(trace.StatusCode.ERROR, "integrity"))
                raise IntegrityError(
                    f"{protocol}/{mode}: {kind} {sequence} arrived corrupted (checksum ok:"
                    f" {ack.checksum_ok}, {ack.bytes_received} of {image.size} bytes, ack for"
                    f" sequence {ack.sequence})"
                )
            sample = Sample(
                sequence=sequence,
                scheduled_ns=scheduled_ns or send_ns,
                send_ns=send_ns,
                receive_ns=ack.receive_time_ns,
                ack_ns=ack_ns,
                image_bytes=image.size,
                message_bytes=message_bytes,
                checksum_ok=True,
            )
            if not warmup:
                if s.observe.telemetry:
                    self.metrics.image_sent(
                        protocol,
                        mode,
                        sample.round_trip_s,
                        format(span.get_span_context().trace_id, "032x"),
                    )
                if self.progress is not None:
                    self.progress(protocol, 1)
            if debug_enabled():
                log.debug(
                    f"{kind} acknowledged",
                    bytes=image.size,
                    transmission_s=sample.transmission_s,
                    round_trip_s=sample.round_trip_s,
                )
            return sample

    def _whole_message(self, mode: str, meta: ImageMeta, send_ns: int, data: bytes) -> Payload:
        """A json or chunked mode's message(s), serialised whole after the stamp."""
        meta = dataclasses.replace(meta, send_time_ns=send_ns)
        if mode == "json":
            return wire.encode_json_image(meta, data)
        return wire.encode_chunks(meta, data, self.settings.workload.chunk_bytes)

    def _too_large(self, protocol: str, mode: str, size: int) -> NoReturn:
        self.metrics.errors.labels(protocol, "rejected").inc()
        hint = " (IMGBENCH_GRPC_MODE=chunked sends it in parts)" if mode == "unary" else ""
        raise RunError(
            f"{protocol}/{mode}: a {size}-byte message exceeds"
            f" IMGBENCH_MAX_MESSAGE_BYTES={self.settings.transport.max_message_bytes}{hint}"
        )

    def _span(
        self,
        name: str,
        attributes: Attributes,
        *,
        kind: SpanKind = SpanKind.INTERNAL,
        context: Context | None = None,
        links: list[Link] | None = None,
    ) -> contextlib.AbstractContextManager[Any]:
        """A current span, or none at all with IMGBENCH_TELEMETRY=off."""
        if self.settings.observe.telemetry:
            return self.tracer.start_as_current_span(
                name, context=context, kind=kind, attributes=attributes, links=links
            )
        return _no_span()

    def _image_span(
        self, protocol: str, mode: str, key: RunKey, sequence: int, size: int, warmup: bool
    ) -> contextlib.AbstractContextManager[trace.Span]:
        """The current "send image" span of one image (none with IMGBENCH_TELEMETRY=off).

        One trace per image: a new root, linked to the run span's trace; CLIENT
        (PRODUCER in push mode): see tracing.span_kinds. Started by
        :class:`~imgbench.observe.spans.SpanStarter`: the SDK's span, cheaper.
        """
        if not self.settings.observe.telemetry:
            return _no_span()
        span = self._spans.start(
            "send image",
            kind=span_kinds(mode)[0],
            parent=None,
            links=(Link(key.run_span),) if key.run_span is not None else (),
            attributes={
                **self._peer(protocol, mode),
                "imgbench.protocol": protocol,
                "imgbench.mode": mode,
                "imgbench.run_id": key.run_id,
                "imgbench.repetition": key.repetition,
                "imgbench.sequence": sequence,
                "imgbench.bytes": size,
                "imgbench.warmup": warmup,
            },
        )
        return current(span, end_on_exit=True)

    def _peer(self, protocol: str, mode: str) -> dict[str, str | int]:
        """Semantic-convention attributes naming the listening endpoint of ``protocol``:
        the receiver's, or in push mode this transmitter's push server (computed once
        per protocol and mode: the settings do not change; callers copy the dict)."""
        peer = self._peers.get((protocol, mode))
        if peer is None:
            peer = self._peers[(protocol, mode)] = self._endpoint(protocol, mode)
        return peer

    def _endpoint(self, protocol: str, mode: str) -> dict[str, str | int]:
        s = self.settings
        if mode == PUSH_MODE:
            port = s.push.push_ws_port if protocol == "websocket" else s.push.push_grpc_port
            return span_attributes(protocol, mode, address=s.push.push_host or None, port=port)
        port = s.target.ws_port if protocol == "websocket" else s.target.grpc_port
        return span_attributes(protocol, mode, address=s.target.receiver_host, port=port)

    async def _costs_snapshot(self, *, start: bool) -> dict[str, Any]:
        """Own CPU/memory, and the receiver's when its HTTP port answers.

        Reads, then resets the peak-RSS marks, so the next snapshot's peak
        covers exactly the interval between the two. Own CPU is read on the side
        of the HTTP exchange nearest the measured images (after it at the
        ``start``, before it at the end), so the window holds none of its work.
        """
        snap: dict[str, Any] = {} if start else {"transmitter": resources.snapshot()}
        s = self.settings
        tls = transmitter_tls(s)
        context = tls.client_context() if tls is not None else None
        token = s.security.token or None
        try:
            status, body = await get_json(
                s.target.receiver_host, s.target.http_port, "/stats", 2, tls=context, token=token
            )
            if status == 200:
                snap["receiver"] = body
            await request(
                s.target.receiver_host,
                s.target.http_port,
                "POST",
                "/stats/reset-peak",
                timeout=2,
                tls=context,
                token=token,
            )
        except (OSError, TimeoutError, ValueError):
            pass  # costs are optional; the figures are not
        if start:
            snap["transmitter"] = resources.snapshot()
        resources.reset_peak_rss()
        return snap


def _corrected(samples: list[Sample], prober: ClockProber) -> tuple[list[Sample], dict[str, Any]]:
    """The samples corrected with the run's clock estimate, and ``ProtocolRun.clock``.

    Shared clock: unchanged (exact). No estimate: unchanged, status uncorrected.
    """
    clock = prober.as_dict()
    run_clock, _ = prober.estimate()
    if run_clock is None or run_clock.shared:
        return samples, clock
    out = []
    try:
        for x in samples:
            value, bound = run_clock.correct(x.raw_transmission_ns, x.scheduled_ns)
            out.append(dataclasses.replace(x, transmission_ns=value, bound_ns=bound))
    except ClockError as exc:
        return samples, {"status": "uncorrected", "why": f"correction refused: {exc}"}
    return out, clock


@contextlib.contextmanager
def _no_span() -> Iterator[trace.Span]:
    yield trace.INVALID_SPAN


def _costs(before: dict[str, Any], after: dict[str, Any], run: ProtocolRun) -> dict[str, float]:
    """CPU seconds and peak RSS of both sides over the measured part of a run.

    ``*_cpu_s`` excludes the CPU each side spent serving its HTTP API (Prometheus
    scrapes, health probes, /stats), reported as ``*_api_cpu_s``.
    """
    sent = sum(x.message_bytes for x in run.samples)
    sent_mb = sent / 1e6
    costs: dict[str, float] = {"bytes_sent": float(sent)}
    if run.samples:
        costs["size_overhead"] = run.samples[0].message_bytes / max(1, run.samples[0].image_bytes)
    for side in ("transmitter", "receiver"):
        if side in before and side in after:
            cpu = after[side]["cpu_s"] - before[side]["cpu_s"]
            costs[f"{side}_cpu_s"] = cpu
            if "api_cpu_s" in after[side] and "api_cpu_s" in before[side]:
                # Excluded from cpu_s: serving scrapes, probes and /stats (not transport work).
                costs[f"{side}_api_cpu_s"] = after[side]["api_cpu_s"] - before[side]["api_cpu_s"]
            costs[f"{side}_cpu_ms_per_mb"] = cpu * 1000 / sent_mb if sent_mb else 0.0
            costs[f"{side}_peak_rss_bytes"] = float(after[side]["peak_rss_bytes"])
    return costs
