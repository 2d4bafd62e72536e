"""Per-image spans without the SDK's per-span machinery: the same spans, cheaper.

Every image makes one span on each service ("send image", "receive image").
Through the SDK (``Tracer.start_span``, ``use_span``, ``Span.end``) each costs
50-65 µs of the event loop's CPU here, most of it validating the ~12 attributes
one by one (``BoundedAttributes``), building ``Link`` and ``BoundedList``
wrappers, two locks, and a ``ReadableSpan`` copy at the end (measured with
``thread_time`` loops; README "Performance", telemetry). :class:`SpanStarter`
makes the same span in a few microseconds: :class:`ImageSpan` is an SDK
``ReadableSpan`` (what the span processors and exporters receive) and an API
``Span`` (what the context, the logs' trace ids and the opt-in gRPC
interceptors see), holding the attributes as the plain dict the caller built.

What the SDK's path does is kept: ids from the tracer's id generator (the
SDK's ``RandomIdGenerator`` drawn inline: the same ``random`` draws), the
tracer's sampler (its decision, trace state and attributes; the default
``parentbased_always_on`` and ``always_on`` are decided inline, with the same
result), the parent (a remote ``traceparent``, the current span, or none),
trace flags (sampled, and the random-trace-id bit the SDK sets), the resource
and instrumentation scope of the tracer, the processors' ``on_start``,
``_on_ending`` and ``on_end``, and a not-sampled span as a ``NonRecordingSpan``.
The per-span API (``set_attribute``, ``add_event``, ``record_exception``,
``set_status``, ``add_link``, ``update_name``) behaves as the SDK's; the rare
calls switch the span to the SDK's bounded containers first.

The SDK's span is used instead (:meth:`SpanStarter.start` falls back to
``tracer.start_span``) when the fast one could differ: a tracer that is not
the SDK's or is disabled, span limits that would cut these spans (fewer
attributes or links allowed than given, a value-length limit), or the SDK's
internal span metrics switched on (``OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED``).

When every span processor is exactly the SDK's ``BatchSpanProcessor`` (the
services' set-up), ``ImageSpan.end`` puts the span in their queues itself, with
the checks ``BatchProcessor.emit`` makes (shut down, forked, queue full: then
``emit`` is called), and :class:`current` sets the context variable behind
``context.attach`` directly: per image span 13-18 µs less of the event loop's CPU
in the services (README "Performance", telemetry, 15:05Z).

Not thread-safe (the SDK's span takes a lock): an image span is started,
changed and ended on one thread (the event loop); the exporter's thread reads
it only after ``end``. ``tests/unit/observe/test_spans.py`` checks each span
exports exactly what the SDK's exports for the same ids and times.
"""

from __future__ import annotations

import logging
import os
import random
import re
import time
import traceback
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Final

from opentelemetry import context as context_api
from opentelemetry import trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import _RUNTIME_CONTEXT
from opentelemetry.context.context import Context
from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext
from opentelemetry.sdk.trace import (
    Event,
    ReadableSpan,
    SynchronousMultiSpanProcessor,
    Tracer,
)
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, DEFAULT_ON, Decision
from opentelemetry.sdk.util import BoundedList
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)
from opentelemetry.trace.propagation import _SPAN_KEY
from opentelemetry.util import types

from imgbench.observe.tracing import context_from_traceparent

_logger = logging.getLogger(__name__)

#: A scalar attribute value, the only kind the services put on an image span.
Scalar = str | bool | int | float
#: The canonical W3C traceparent the services write (version 00, lower-case hex).
_CANONICAL: Final = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_UNSET: Final = Status(StatusCode.UNSET)
_SAMPLED: Final = TraceFlags(TraceFlags.SAMPLED)
_SAMPLED_RANDOM: Final = TraceFlags(TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID)
#: The context variable behind ``context_api.attach`` when the runtime context is the
#: default (contextvars) one; None for another (``OTEL_PYTHON_CONTEXT``): the API is used.
_CONTEXT_VAR: Final = (
    _RUNTIME_CONTEXT._current_context
    if type(_RUNTIME_CONTEXT) is ContextVarsRuntimeContext
    else None
)
#: The fields of the SDK's batch processor that the direct enqueue uses (see ImageSpan.end).
_BATCH_FIELDS: Final = (
    "_queue",
    "_shutdown",
    "_pid",
    "_max_queue_size",
    "_max_export_batch_size",
    "_worker_awaken",
)
#: This process's id, kept current across forks (the batch processor re-arms in a child).
_pid = os.getpid()


def _forked() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_forked)


class _Current:
    """The parent is whatever span is current (``start_span(context=None)``)."""


CURRENT: Final = _Current()
#: A span's parent: a span context, :data:`CURRENT`, or None (a root).
Parent = SpanContext | _Current | None


def remote_parent(value: str) -> Parent:
    """The parent named by a ``traceparent`` value, as the W3C propagator reads it.

    The canonical form the services send is parsed inline; anything else goes
    through the library's propagator (:func:`context_from_traceparent`). Returns the
    remote :class:`SpanContext`, ``None`` for a value the propagator refuses (the
    span is then a root, as with the propagator's empty context), or
    :data:`CURRENT` for an empty value (as ``start_span(context=None)`` takes it).
    """
    if not value:
        return CURRENT
    match = _CANONICAL.fullmatch(value)
    if match is not None:
        trace_id, span_id = int(match[1], 16), int(match[2], 16)
        if trace_id and span_id:
            return SpanContext(trace_id, span_id, True, TraceFlags(int(match[3], 16)))
        return None
    ctx = trace.get_current_span(context_from_traceparent(value)).get_span_context()
    return ctx if ctx.is_valid else None


class ImageSpan(trace.Span, ReadableSpan):
    """One recording span: an SDK ``ReadableSpan`` and an API ``Span`` (see the module)."""

    def __init__(
        self,
        starter: SpanStarter,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        kind: SpanKind,
        attributes: Any,
        links: Sequence[Link],
        start_time: int,
    ) -> None:
        # ReadableSpan's fields, set directly (its __init__ is not needed).
        self._starter = starter
        self._name = name
        self._context = context
        self._parent = parent
        self._kind = kind
        self._attributes = attributes
        self._links: Any = links
        self._events: Any = ()
        self._status = _UNSET
        self._start_time = start_time
        self._end_time: int | None = None
        self._resource = starter.resource
        self._instrumentation_scope = starter.scope
        self._instrumentation_info = starter.info

    # -- the API Span -------------------------------------------------------

    def get_span_context(self) -> SpanContext:
        return self._context  # type: ignore[return-value]  # never None here

    def is_recording(self) -> bool:
        return self._end_time is None

    def end(self, end_time: int | None = None) -> None:
        if self._end_time is not None:
            _logger.warning("Calling end() on an ended span.")
            return
        self._end_time = end_time if end_time is not None else time.time_ns()
        if type(self._attributes) is BoundedAttributes:
            self._attributes._immutable = True
        batches = self._starter.batches()
        if batches is None:
            processor = self._starter.processor
            # The processors are typed for the SDK's Span; this is a ReadableSpan and an
            # API Span, which is all that the SDK's own processors use.
            processor._on_ending(self)  # type: ignore[arg-type]
            processor.on_end(self)
            return
        # Only batch span processors: their _on_ending does nothing and their on_end
        # queues a sampled span (BatchProcessor.emit); done here without the four calls
        # and the getpid system call per span. Anything unusual goes through emit.
        if not self.get_span_context().trace_flags.sampled:
            return
        for batch in batches:
            queue = batch._queue
            if batch._shutdown or batch._pid != _pid or len(queue) >= batch._max_queue_size:
                batch.emit(self)
                continue
            queue.appendleft(self)
            if len(queue) >= batch._max_export_batch_size and not batch._worker_awaken.is_set():
                batch._worker_awaken.set()

    def _ended(self, method: str) -> bool:
        if self._end_time is not None:
            _logger.warning("Tried calling %s on an ended span.", method)
            return True
        return False

    def _bounded(self) -> BoundedAttributes:
        """The attributes as the SDK's span holds them (for the rare later changes)."""
        if type(self._attributes) is not BoundedAttributes:
            limits = self._starter.limits
            self._attributes = BoundedAttributes(
                limits.max_span_attributes,
                self._attributes,
                immutable=False,
                max_value_len=limits.max_span_attribute_length,
            )
        return self._attributes

    def set_attributes(self, attributes: Mapping[str, types.AnyValue]) -> None:
        if self._end_time is not None:
            _logger.warning("Setting attribute on ended span.")
            return
        self._bounded()._set_items(attributes)

    def set_attribute(self, key: str, value: types.AnyValue) -> None:
        if self._end_time is not None:
            _logger.warning("Setting attribute on ended span.")
            return
        self._bounded()[key] = value

    def add_event(
        self, name: str, attributes: types.Attributes = None, timestamp: int | None = None
    ) -> None:
        limits = self._starter.limits
        bounded = BoundedAttributes(
            limits.max_event_attributes,
            attributes,
            max_value_len=limits.max_attribute_length,
            immutable=True,
        )
        if self._ended("_add_event"):
            return
        if type(self._events) is not BoundedList:
            self._events = BoundedList(limits.max_events)
        self._events.append(Event(name=name, attributes=bounded, timestamp=timestamp))

    def add_link(self, context: SpanContext, attributes: types.Attributes = None) -> None:
        if not (context.is_valid or attributes):
            return
        limits = self._starter.limits
        bounded = BoundedAttributes(
            limits.max_link_attributes,
            attributes,
            max_value_len=limits.max_attribute_length,
            immutable=True,
        )
        if self._ended("_add_link"):
            return
        if type(self._links) is not BoundedList:
            self._links = BoundedList.from_seq(limits.max_links, self._links)
        self._links.append(Link(context=context, attributes=bounded))

    def update_name(self, name: str) -> None:
        if not self._ended("update_name"):
            self._name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        # The SDK's rules: OK is final, UNSET is ignored, a Status takes no description.
        if self._ended("set_status"):
            return
        if isinstance(status, Status):
            if self._status.status_code is StatusCode.OK or status.status_code is StatusCode.UNSET:
                return
            if description is not None:
                _logger.warning(
                    "Description %s ignored. Use either `Status` or `(StatusCode, Description)`",
                    description,
                )
            self._status = status
        elif isinstance(status, StatusCode):
            if self._status.status_code is StatusCode.OK or status is StatusCode.UNSET:
                return
            self._status = Status(status, description)

    def record_exception(
        self,
        exception: BaseException,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        """An ``exception`` event with the SDK's attributes."""
        module = type(exception).__module__
        qualname = type(exception).__qualname__
        exception_type = f"{module}.{qualname}" if module and module != "builtins" else qualname
        event: dict[str, types.AnyValue] = {
            "exception.type": exception_type,
            "exception.message": str(exception),
            "exception.stacktrace": "".join(traceback.format_exception(exception)),
            "exception.escaped": str(escaped),
        }
        if attributes:
            event.update(attributes)
        self.add_event("exception", attributes=event, timestamp=timestamp)

    def __repr__(self) -> str:
        return f'ImageSpan(name="{self._name}", context={self._context})'


class SpanStarter:
    """Starts image spans for one SDK tracer (see the module for what is kept)."""

    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer
        sdk = tracer if isinstance(tracer, Tracer) else None
        internal_metrics = (
            os.environ.get("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "").strip().lower() == "true"
        )  # as the SDK reads it (anything else: off)
        enabled = getattr(sdk, "_is_enabled", lambda: True)()
        self._fast = sdk is not None and enabled and not internal_metrics
        if sdk is None:
            return
        self.resource = sdk.resource
        self.scope = sdk._instrumentation_scope
        self.info = sdk.instrumentation_info
        self.processor = sdk.span_processor
        #: The processors' tuple the batch processors below were read from (it is
        #: replaced when a processor is added, so :meth:`batches` re-reads it then).
        self._chain: Any = None
        self._batches: tuple[Any, ...] | None = None
        self.limits = limits = sdk._span_limits
        self._sampler = sampler = sdk.sampler
        self._ids = sdk.id_generator
        self._random_ids = type(self._ids) is RandomIdGenerator
        # The default samplers decide from the parent's sampled flag alone.
        self._always = sampler is ALWAYS_ON
        self._parent_based_on = sampler is DEFAULT_ON
        # Attributes are kept as given while no limit could cut them (checked per span).
        unlimited = 1 << 62
        if limits.max_span_attribute_length is None:
            self._max_attributes = (
                unlimited if limits.max_span_attributes is None else limits.max_span_attributes
            )
        else:
            self._max_attributes = -1
        self._max_links = unlimited if limits.max_links is None else limits.max_links
        # What the SDK puts on a link without attributes (immutable, so it can be shared).
        self._no_link_attributes = BoundedAttributes(
            limits.max_link_attributes,
            None,
            max_value_len=limits.max_attribute_length,
            immutable=True,
        )

    def start(
        self,
        name: str,
        *,
        kind: SpanKind,
        attributes: dict[str, Scalar],
        parent: Parent = None,
        links: Sequence[Link] = (),
        start_time: int | None = None,
    ) -> trace.Span:
        """A started span, as ``tracer.start_span`` would make it.

        ``attributes``: the span's own (the dict is kept, not copied: the caller
        must not change it); non-empty string keys, scalar values. ``parent``: a
        :class:`SpanContext` (e.g. from :func:`remote_parent`), ``None`` for a
        root, or :data:`CURRENT`. ``links``:
        without attributes of their own. ``start_time``: Unix ns (default now).
        """
        if isinstance(parent, _Current):
            current = trace.get_current_span().get_span_context()
            parent = current if current.is_valid else None
        sdk = not self._fast or len(attributes) > self._max_attributes
        if links and not sdk:
            sdk = len(links) > self._max_links
            for link in links:
                sdk = sdk or bool(link.attributes)
        if sdk:
            return self._tracer.start_span(
                name,
                context=_context_of(parent),
                kind=kind,
                attributes=attributes,
                links=links,
                start_time=start_time,
            )
        ids = self._ids
        random_ids = self._random_ids
        if parent is None:
            if random_ids:  # RandomIdGenerator's, inline (the same draws from `random`)
                trace_id = random.getrandbits(128)
                while not trace_id:
                    trace_id = random.getrandbits(128)
                random_id = True
            else:
                trace_id = ids.generate_trace_id()
                random_id = ids.is_trace_id_random()
            state = None
        else:
            trace_id = parent.trace_id
            random_id = parent.trace_flags.random_trace_id
            state = parent.trace_state
        span_attributes: Any = attributes
        if self._always or (
            self._parent_based_on and (parent is None or parent.trace_flags.sampled)
        ):
            flags = _SAMPLED_RANDOM if random_id else _SAMPLED
        else:
            result = self._sampler.should_sample(
                _context_of(parent), trace_id, name, kind, attributes, links
            )
            state = result.trace_state
            sampled = result.decision is Decision.RECORD_AND_SAMPLE
            bits = TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT
            flags = TraceFlags(bits | TraceFlags.RANDOM_TRACE_ID if random_id else bits)
            if result.decision is Decision.DROP:
                return NonRecordingSpan(
                    SpanContext(trace_id, ids.generate_span_id(), False, flags, state)
                )
            span_attributes = dict(result.attributes)
        if random_ids:
            span_id = random.getrandbits(64)
            while not span_id:
                span_id = random.getrandbits(64)
        else:
            span_id = ids.generate_span_id()
        context = SpanContext(trace_id, span_id, False, flags, state)
        valid = []
        for link in links:
            if link.context.is_valid:
                link._attributes = self._no_link_attributes  # as the SDK's span does
                valid.append(link)
        span = ImageSpan(
            self,
            name,
            context,
            parent,
            kind,
            span_attributes,
            tuple(valid),
            start_time if start_time is not None else time.time_ns(),
        )
        if self.batches() is None:  # the batch span processor's on_start does nothing
            self.processor.on_start(span, parent_context=None)  # type: ignore[arg-type]
        return span

    def batches(self) -> tuple[Any, ...] | None:
        """The SDK ``BatchProcessor`` of each span processor when every processor is
        exactly the SDK's ``BatchSpanProcessor`` (and has the fields the direct enqueue
        reads), else None: the processors are then called as the SDK's span calls them."""
        processor = self.processor
        if type(processor) is not SynchronousMultiSpanProcessor:
            return None
        chain = processor._span_processors
        if chain is not self._chain:
            batches = tuple(getattr(p, "_batch_processor", None) for p in chain)
            usable = all(type(p) is BatchSpanProcessor for p in chain) and all(
                all(hasattr(b, field) for field in _BATCH_FIELDS) for b in batches
            )
            self._chain, self._batches = chain, batches if usable else None
        return self._batches


def _context_of(parent: SpanContext | None) -> context_api.Context:
    """A context whose current span is ``parent`` (an empty one for a root)."""
    if parent is None:
        return context_api.Context()
    return trace.set_span_in_context(NonRecordingSpan(parent), context_api.Context())


class current:  # lower case: used like the function it replaces, trace.use_span
    """``span`` as the current span, as ``trace.use_span`` makes it (an exception
    escaping the block is recorded on the span and sets its status to ERROR); ends
    it on exit when ``end_on_exit``. A class, not a generator: it runs per image."""

    __slots__ = ("_end", "_span", "_token")

    def __init__(self, span: trace.Span, *, end_on_exit: bool) -> None:
        self._span = span
        self._end = end_on_exit

    def __enter__(self) -> trace.Span:
        var = _CONTEXT_VAR
        if var is None:
            self._token = context_api.attach(trace.set_span_in_context(self._span))
        else:
            # What set_span_in_context + attach do, without their four calls.
            values = var.get().copy()
            values[_SPAN_KEY] = self._span
            self._token = var.set(Context(values))
        return self._span

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        var = _CONTEXT_VAR
        if var is None:
            context_api.detach(self._token)
        else:
            try:
                var.reset(self._token)
            except Exception:  # a token of another context or used twice: the API logs it
                context_api.detach(self._token)
        span = self._span
        if isinstance(exc, Exception) and span.is_recording():
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        if self._end:
            span.end()


__all__ = ["CURRENT", "ImageSpan", "Parent", "Scalar", "SpanStarter", "current", "remote_parent"]
