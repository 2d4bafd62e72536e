"""Image spans started by SpanStarter are the spans the SDK's tracer makes, field by field.

Each case makes the same span twice, through the SDK (``start_span`` /
``start_as_current_span``) and through :class:`SpanStarter`, with the random
generator seeded alike (both take their ids from the tracer's id generator, in the
same order), and compares what an exporter receives: the span as JSON, the
library's OTLP request and the fast encoder's.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk._shared_internal import BatchProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace import Span as SdkSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    DEFAULT_OFF,
    DEFAULT_ON,
    ParentBasedTraceIdRatio,
    Sampler,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from imgbench.observe import otlp
from imgbench.observe.logs import add_trace_ids
from imgbench.observe.spans import CURRENT, ImageSpan, SpanStarter, current, remote_parent
from imgbench.observe.tracing import context_from_traceparent, span_attributes, traceparent

SAMPLERS: dict[str, Sampler] = {
    "parentbased_always_on": DEFAULT_ON,
    "always_on": ALWAYS_ON,
    "always_off": ALWAYS_OFF,
    "parentbased_always_off": DEFAULT_OFF,
    "traceidratio": TraceIdRatioBased(0.5),
    "parentbased_traceidratio": ParentBasedTraceIdRatio(0.5),
}
SENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
NOT_SAMPLED = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
RANDOM_BIT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-03"


class _Sides:
    """One provider (one resource) with an in-memory exporter, for both ways of starting;
    through the SDK's batch span processor (as the services export: ImageSpan.end queues
    into it directly) when ``batch``, else its simple one."""

    def __init__(
        self, sampler: Sampler = DEFAULT_ON, limits: SpanLimits | None = None, batch: bool = False
    ) -> None:
        self.memory = InMemorySpanExporter()
        self.provider = TracerProvider(
            resource=Resource.create({"service.name": "imgbench-test"}),
            sampler=sampler,
            span_limits=limits,
        )
        self.provider.add_span_processor(
            BatchSpanProcessor(self.memory, schedule_delay_millis=1e6)
            if batch
            else SimpleSpanProcessor(self.memory)
        )
        self.tracer = self.provider.get_tracer("imgbench.test", "1.0")
        self.starter = SpanStarter(self.tracer)

    def both(self, make: Callable[[bool], Any]) -> tuple[list[ReadableSpan], list[ReadableSpan]]:
        """``make(fast)`` run twice from the same seed: the spans each way exported."""
        out = []
        results = []
        for fast in (False, True):
            self.memory.clear()
            random.seed(1234)
            results.append(make(fast))
            self.provider.force_flush()
            out.append(list(self.memory.get_finished_spans()))
        assert results[0] == results[1]
        return out[0], out[1]


def _json(span: ReadableSpan) -> str:
    """The span as JSON; of an event, its time and its stack trace's frames left out
    (an exception event is stamped when recorded, from where it is recorded)."""
    text = re.sub(r'("timestamp": )"[^"]*"', r"\1-", span.to_json())
    return re.sub(r'("exception.stacktrace": ")(?:[^"\\]|\\.)*\\n([^"\\]*)\\n"', r"\1\2", text)


def _same(sdk: list[ReadableSpan], fast: list[ReadableSpan], count: int, ours: int = 1) -> None:
    """The same spans (``count``), ``ours`` of them started by SpanStarter."""
    assert len(sdk) == len(fast) == count
    for a, b in zip(sdk, fast, strict=True):
        assert _json(a) == _json(b)
        assert [e.timestamp > 0 for e in a.events] == [e.timestamp > 0 for e in b.events]
        assert a.dropped_attributes == b.dropped_attributes
        assert a.dropped_links == b.dropped_links
        assert a.dropped_events == b.dropped_events
        assert a.instrumentation_scope == b.instrumentation_scope
        assert a.resource is b.resource
        if a.events:  # equal but for the event's time and frames (checked above)
            b._events = a._events  # type: ignore[attr-defined]
    request = encode_spans(sdk)
    assert encode_spans(fast) == request
    assert otlp.translate(fast) == request
    assert sum(type(span) is ImageSpan for span in fast) == ours


def _send_attributes(sequence: int) -> dict[str, str | bool | int | float]:
    return {
        **span_attributes("grpc", "unary", address="127.0.0.1", port=50051),
        "imgbench.protocol": "grpc",
        "imgbench.mode": "unary",
        "imgbench.run_id": "20261202T080000Z-abcdef12",
        "imgbench.repetition": 0,
        "imgbench.sequence": sequence,
        "imgbench.bytes": 1 << 20,
        "imgbench.warmup": sequence == 0,
    }


def _receive_attributes() -> dict[str, str | bool | int | float]:
    return {
        **span_attributes("websocket", "binary", port=8765),
        "imgbench.transmission_s": 0.00123,
        "imgbench.zero": -0.0,
        "imgbench.checksum_ok": True,
        "imgbench.clock.status": "corrected",
        "imgbench.clock.offset_ns": -12345,
        "imgbench.clock.name": "monotonic",
        "imgbench.unicode": "défaut ✓",
    }


def _send(sides: _Sides, fast: bool, run: trace.Span, kind: SpanKind, fail: bool) -> str:
    """A transmitter's image span (linked to ``run``, current while the image is sent)."""
    links = (Link(run.get_span_context()),)
    if fast:
        span = sides.starter.start(
            "send image", kind=kind, attributes=_send_attributes(3), links=links, start_time=10
        )
        manager = current(span, end_on_exit=False)
    else:
        manager = sides.tracer.start_as_current_span(
            "send image",
            context=Context(),
            kind=kind,
            attributes=_send_attributes(3),
            links=list(links),
            start_time=10,
            end_on_exit=False,
        )
    parent = ""
    with pytest.raises(RuntimeError) if fail else nullcontext(), manager as span:
        parent = traceparent(trace.get_current_span())
        if fail:
            raise RuntimeError("lost")
    span.end(20)
    return parent


@pytest.fixture(params=list(SAMPLERS))
def sampler(request: pytest.FixtureRequest) -> Sampler:
    return SAMPLERS[request.param]


@pytest.mark.parametrize("batch", [False, True], ids=["simple", "batch"])
@pytest.mark.parametrize("kind", [SpanKind.CLIENT, SpanKind.PRODUCER])
@pytest.mark.parametrize("fail", [False, True])
def test_the_send_span_is_the_sdks(
    sampler: Sampler, kind: SpanKind, fail: bool, batch: bool
) -> None:
    sides = _Sides(sampler, batch=batch)

    def make(fast: bool) -> str:
        run = sides.tracer.start_span("grpc run", start_time=1)
        parent = _send(sides, fast, run, kind, fail)
        run.end(30)
        return parent

    sdk, fast = sides.both(make)
    sampled = [s for s in sdk if s.name == "send image"]
    _same(sdk, fast, len(sdk), len(sampled))
    if sampled and fail:
        (span,) = sampled
        assert span.events[0].name == "exception"  # recorded, as use_span records it
        assert span.status.status_code is StatusCode.ERROR


@pytest.mark.parametrize(
    "incoming", [SENT, NOT_SAMPLED, RANDOM_BIT, "", "garbage", "ff-" + SENT[3:]]
)
@pytest.mark.parametrize("batch", [False, True], ids=["simple", "batch"])
def test_the_receive_span_is_the_sdks(sampler: Sampler, incoming: str, batch: bool) -> None:
    sides = _Sides(sampler, batch=batch)

    def make(fast: bool) -> str:
        # An outer span is current, as with the opt-in gRPC server interceptor: an
        # empty traceparent makes it the parent, an invalid one makes a root.
        with sides.tracer.start_as_current_span("outer", start_time=1, end_on_exit=False) as outer:
            if fast:
                span = sides.starter.start(
                    "receive image",
                    kind=SpanKind.SERVER,
                    parent=remote_parent(incoming),
                    attributes=_receive_attributes(),
                    start_time=100,
                )
            else:
                span = sides.tracer.start_span(
                    "receive image",
                    context=context_from_traceparent(incoming),
                    kind=SpanKind.SERVER,
                    attributes=_receive_attributes(),
                    start_time=100,
                )
            with current(span, end_on_exit=False) if fast else trace.use_span(span):
                span.set_status(Status(StatusCode.ERROR, "checksum mismatch"))
                child = traceparent(trace.get_current_span())
            span.end(200)
        outer.end(300)
        return child

    sdk, fast = sides.both(make)
    _same(sdk, fast, len(sdk), sum(s.name == "receive image" for s in sdk))


def test_remote_parent_reads_as_the_w3c_propagator() -> None:
    values = [
        SENT,
        NOT_SAMPLED,
        RANDOM_BIT,
        "00-00000000000000000000000000000000-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
        "00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01",
        "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
        " 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\t",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
        "x" * 600,
    ]
    for value in values:
        expected = trace.get_current_span(context_from_traceparent(value)).get_span_context()
        got = remote_parent(value)
        if expected.is_valid:
            assert got == expected, value
            assert isinstance(got, trace.SpanContext) and got.is_remote
        else:
            assert got is None, value
    assert remote_parent("") is CURRENT


def test_limits_that_would_cut_the_span_use_the_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    for limits in (
        SpanLimits(max_span_attributes=3),
        SpanLimits(max_attribute_length=4),
        SpanLimits(max_links=0),
    ):
        sides = _Sides(limits=limits)

        def make(fast: bool, sides: _Sides = sides) -> str:
            run = sides.tracer.start_span("grpc run", start_time=1)
            parent = _send(sides, fast, run, SpanKind.CLIENT, False)
            run.end(30)
            return parent

        sdk, fast = sides.both(make)
        assert all(isinstance(span, SdkSpan | ReadableSpan) for span in fast)
        assert not any(type(span) is ImageSpan for span in fast)
        assert [s.to_json() for s in sdk] == [s.to_json() for s in fast]
        assert encode_spans(fast) == encode_spans(sdk)
    monkeypatch.setenv("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "true")
    sides = _Sides()
    span = sides.starter.start("s", kind=SpanKind.INTERNAL, attributes={})
    assert type(span) is not ImageSpan
    span.end()


def test_generous_limits_keep_the_fast_span() -> None:
    sides = _Sides(limits=SpanLimits(max_span_attributes=len(_send_attributes(0))))
    span = sides.starter.start("s", kind=SpanKind.CLIENT, attributes=_send_attributes(0))
    assert type(span) is ImageSpan
    span.end()


def test_later_changes_behave_as_on_the_sdks_span(caplog: pytest.LogCaptureFixture) -> None:
    # Room for the 15 attributes it starts with, not for the 4 added later.
    sides = _Sides(limits=SpanLimits(max_span_attributes=18, max_events=1))

    def make(fast: bool) -> None:
        attributes = _send_attributes(1)
        span = (
            sides.starter.start("s", kind=SpanKind.CLIENT, attributes=attributes, start_time=5)
            if fast
            else sides.tracer.start_span(
                "s", kind=SpanKind.CLIENT, attributes=attributes, start_time=5
            )
        )
        span.set_attribute("imgbench.extra", 7)
        span.set_attributes({"imgbench.more": "x", "imgbench.most": 1.5, "over": "limit"})
        span.add_event("one", {"k": "v"}, timestamp=6)
        span.add_event("two", timestamp=7)  # beyond max_events: dropped and counted
        span.add_link(trace.SpanContext(5, 6, False), {"why": "test"})
        span.update_name("renamed")
        span.set_status(StatusCode.OK)
        span.set_status(Status(StatusCode.ERROR, "ignored after OK"))
        span.end(9)
        span.set_attribute("late", 1)
        span.end(10)

    with caplog.at_level(logging.WARNING):
        sdk, fast = sides.both(make)
    _same(sdk, fast, 1)
    assert fast[0].dropped_events == 1 and fast[0].dropped_attributes == 1
    assert otlp.encode_request(fast) is None  # events: the library encodes it
    messages = [r.getMessage() for r in caplog.records]
    assert messages.count("Setting attribute on ended span.") == 2
    assert messages.count("Calling end() on an ended span.") == 2


def test_the_span_is_current_for_logs_and_child_spans() -> None:
    sides = _Sides()
    span = sides.starter.start("send image", kind=SpanKind.CLIENT, attributes={"a": 1})
    with current(span, end_on_exit=True):
        assert trace.get_current_span() is span
        fields = add_trace_ids(None, "info", {})
        child = sides.tracer.start_span("rpc")  # e.g. the opt-in gRPC interceptor's
        child.end()
    assert fields["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert fields["span_id"] == format(span.get_span_context().span_id, "016x")
    assert trace.get_current_span() is trace.INVALID_SPAN
    assert not span.is_recording()
    exported = {s.name: s for s in sides.memory.get_finished_spans()}
    assert exported["rpc"].parent == span.get_span_context()
    assert exported["send image"] is span


def test_a_tracer_that_is_not_the_sdks_gets_its_own_spans() -> None:
    tracer = trace.NoOpTracer()
    span = SpanStarter(tracer).start("s", kind=SpanKind.CLIENT, attributes={"a": 1})
    assert not span.is_recording() and type(span) is not ImageSpan


def test_a_parent_trace_state_is_carried_as_the_sdk_carries_it(sampler: Sampler) -> None:
    sides = _Sides(sampler)
    state = trace.TraceState([("vendor", "value")])
    parent = trace.SpanContext(0xABC, 0xDEF, True, trace.TraceFlags(1), state)

    def make(fast: bool) -> None:
        with trace.use_span(trace.NonRecordingSpan(parent)):
            if fast:
                span = sides.starter.start(
                    "receive image",
                    kind=SpanKind.SERVER,
                    parent=CURRENT,
                    attributes={},
                    start_time=5,
                )
            else:
                span = sides.tracer.start_span("receive image", kind=SpanKind.SERVER, start_time=5)
        span.end(6)
        assert span.get_span_context().trace_state == state

    sdk, fast = sides.both(make)
    _same(sdk, fast, len(sdk), len(sdk))


def test_batch_processors_get_the_span_queued_directly(monkeypatch: pytest.MonkeyPatch) -> None:
    """ImageSpan.end puts the span in the batch processor's queue itself (no emit call:
    what makes it cheaper); the SDK's span goes through emit; both are exported."""
    sides = _Sides(batch=True)
    emitted: list[object] = []
    emit = BatchProcessor.emit
    monkeypatch.setattr(
        BatchProcessor, "emit", lambda self, data: emitted.append(data) or emit(self, data)
    )
    assert sides.starter.batches() is not None
    ours = sides.starter.start("send image", kind=SpanKind.CLIENT, attributes={"a": 1})
    ours.end()
    assert emitted == []
    theirs = sides.tracer.start_span("run")
    theirs.end()
    assert [span.name for span in emitted] == ["run"]  # type: ignore[attr-defined]
    sides.provider.force_flush()
    exported = sides.memory.get_finished_spans()
    assert exported[0] is ours and [span.name for span in exported] == ["send image", "run"]


def test_a_full_batch_wakes_the_exporter_thread() -> None:
    """As emit does: a queue holding a batch's worth wakes the exporter before its delay."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(
        BatchSpanProcessor(memory, schedule_delay_millis=1e6, max_export_batch_size=2)
    )
    starter = SpanStarter(provider.get_tracer("t"))
    for _ in range(2):
        starter.start("send image", kind=SpanKind.CLIENT, attributes={}).end()
    deadline = time.monotonic() + 10
    while len(memory.get_finished_spans()) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(memory.get_finished_spans()) == 2
    provider.shutdown()


def test_other_processors_are_called_as_the_sdks_span_calls_them() -> None:
    """A processor added after the starter was made is seen (the chain is re-read), and
    a chain that is not only batch processors gets on_start / on_end."""
    sides = _Sides(batch=True)
    span = sides.starter.start("send image", kind=SpanKind.CLIENT, attributes={"a": 1})
    later = InMemorySpanExporter()
    sides.provider.add_span_processor(SimpleSpanProcessor(later))
    assert sides.starter.batches() is None
    span.end()
    sides.provider.force_flush()
    assert later.get_finished_spans() == (span,)
    assert sides.memory.get_finished_spans() == (span,)


def test_a_shut_down_batch_processor_takes_nothing(caplog: pytest.LogCaptureFixture) -> None:
    """After shutdown the span goes to emit, which refuses it (as for the SDK's span)."""
    sides = _Sides(batch=True)
    sides.provider.shutdown()
    span = sides.starter.start("send image", kind=SpanKind.CLIENT, attributes={"a": 1})
    with caplog.at_level(logging.INFO):
        span.end()
    (processor,) = sides.provider._active_span_processor._span_processors
    assert len(processor._batch_processor._queue) == 0  # type: ignore[attr-defined]
    assert any("Shutdown called" in r.getMessage() for r in caplog.records)


class _CountingIds(RandomIdGenerator):
    """Another id generator (a subclass: not drawn inline): its ids must be used."""

    def generate_span_id(self) -> int:
        return 0x1234

    def generate_trace_id(self) -> int:
        return 0xABCD

    def is_trace_id_random(self) -> bool:
        return False


def test_an_id_generator_of_its_own_gives_the_ids() -> None:
    """RandomIdGenerator's draws are made inline (same draws, test above); any other
    generator is asked, as the SDK asks it."""
    provider = TracerProvider(id_generator=_CountingIds())
    span = SpanStarter(provider.get_tracer("t")).start(
        "send image", kind=SpanKind.CLIENT, attributes={}
    )
    context = span.get_span_context()
    assert (context.trace_id, context.span_id) == (0xABCD, 0x1234)
    assert context.trace_flags == trace.TraceFlags(trace.TraceFlags.SAMPLED)  # not random
