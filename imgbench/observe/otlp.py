"""OTLP span export without a protobuf object per attribute: the same bytes, cheaper.

opentelemetry-exporter-otlp encodes each batch by building a protobuf object
for every span, attribute, link and status in Python: about 100-140 µs per
image span on this project's machine, on the span processor's thread of both
services, for every image (measured in ``python -m benchmarks``, telemetry
step). :func:`encode_request` writes the same ``ExportTraceServiceRequest``
directly in the protobuf wire format, caching the encoded bytes of attribute
key/value pairs that repeat from span to span (protocol, mode, run id,
endpoint: most of an image span's attributes), and
:class:`FastOTLPSpanExporter` parses them once, in C (upb), into the message
the gRPC stub sends; :class:`FastOTLPHttpSpanExporter` (OTLP/HTTP,
``http/protobuf``) POSTs them as they are, the body the library would send.
Nothing else about the exporters changes (endpoint, headers, TLS, compression,
retries, timeouts: the library's).

Exactness: spans are grouped by resource and instrumentation scope as the
library groups them (equal values merge, first-seen order), attribute values
other than str, bool, int, float and bytes go through the library's own
encoder, and a batch holding anything else this does not write (span events,
from exceptions recorded on a span) is encoded by the library as a whole.
``tests/unit/observe/test_otlp.py`` checks the message equals the library's
for every kind of span the services produce.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any, Final

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.exporter.otlp.proto.common._internal import (
    _encode_attributes,
    _encode_instrumentation_scope,
    _encode_resource,
)
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpOTLPSpanExporter,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.semconv.attributes.http_attributes import HTTP_RESPONSE_STATUS_CODE
from opentelemetry.trace import Link, SpanContext, SpanKind

from imgbench.observe.spans import ImageSpan

#: OTLP ``Span.SpanKind`` numbers.
_KINDS: Final = {
    SpanKind.INTERNAL: 1,
    SpanKind.SERVER: 2,
    SpanKind.CLIENT: 3,
    SpanKind.PRODUCER: 4,
    SpanKind.CONSUMER: 5,
}
#: ``SpanFlags``: the context's is-remote bit is known / set.
_HAS_IS_REMOTE: Final = 0x100
_IS_REMOTE: Final = 0x200
#: Encoded key/value pairs kept for reuse; the cache is emptied when it reaches this.
CACHE_ENTRIES: Final = 4096
_pair_cache: dict[tuple[str, type, Any], bytes] = {}
#: A float attribute's ``KeyValue`` up to its 8 value bytes, by (field tag, key).
_float_prefixes: dict[tuple[bytes, str], bytes] = {}
_pack_u64 = struct.Struct("<Q").pack
_pack_f64 = struct.Struct("<d").pack
_pack_u32 = struct.Struct("<I").pack


_SMALL: Final = tuple(bytes((i,)) for i in range(128))


def _varint(value: int) -> bytes:
    if 0 <= value < 128:
        return _SMALL[value]
    if value < 0:
        value += 1 << 64  # int64: two's complement in ten bytes
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field (string, bytes or message) with its one-byte ``tag``."""
    return tag + _varint(len(payload)) + payload


def _any_value(value: Any) -> bytes | None:
    """``AnyValue`` of a scalar (a oneof: written even when it is the default), else None."""
    kind = type(value)
    if kind is bool:
        return b"\x10\x01" if value else b"\x10\x00"
    if kind is str:
        return _field(b"\x0a", value.encode())
    if kind is int:
        if not -(1 << 63) <= value < 1 << 63:
            return None  # the library's encoder refuses it (and drops the attribute)
        return b"\x18" + _varint(value)
    if kind is float:
        return b"\x21" + _pack_f64(value)
    if kind is bytes:
        return _field(b"\x3a", value)
    return None


def _attributes(tag: bytes, attributes: Any) -> list[bytes]:
    """Each attribute as a ``KeyValue`` field with ``tag``."""
    out: list[bytes] = []
    if not attributes:
        return out
    # BoundedAttributes is a MutableMapping: iterating its plain dict skips the
    # generic (abc) iteration, a third of this function's time.
    plain = attributes._dict if type(attributes) is BoundedAttributes else attributes
    for key, value in plain.items():
        if type(value) is float:
            # Floats are the per-image figures (and -0.0 == 0.0): not cached as pairs, but
            # everything before the 8 value bytes is fixed per key and tag.
            prefix = _float_prefixes.get((tag, key))
            if prefix is None:
                if type(key) is not str or not key:  # the library's encoder decides
                    kvs = _encode_attributes({key: value})
                    out += [_field(tag, kv.SerializeToString()) for kv in kvs]
                    continue
                pair = _field(b"\x0a", key.encode()) + _field(b"\x12", b"\x21" + bytes(8))
                prefix = _field(tag, pair)[:-8]
                if len(_float_prefixes) >= CACHE_ENTRIES:
                    _float_prefixes.clear()
                _float_prefixes[(tag, key)] = prefix
            out.append(prefix + _pack_f64(value))
            continue
        cache_key: Any = (key, type(value), value)
        try:
            encoded = _pair_cache.get(cache_key)
        except TypeError:  # unhashable (a list): not cached
            encoded, cache_key = None, None
        if encoded is None:
            scalar = _any_value(value)
            if scalar is not None and type(key) is str and key:
                encoded = _field(tag, _field(b"\x0a", key.encode()) + _field(b"\x12", scalar))
            else:
                # The library's own encoder (arrays, maps, odd keys, out-of-range ints).
                encoded = b"".join(
                    _field(tag, kv.SerializeToString()) for kv in _encode_attributes({key: value})
                )
            if cache_key is not None:
                if len(_pair_cache) >= CACHE_ENTRIES:
                    _pair_cache.clear()
                _pair_cache[cache_key] = encoded
        out.append(encoded)
    return out


def _flags(context: SpanContext | None) -> bytes:
    flags = _HAS_IS_REMOTE | (_IS_REMOTE if context is not None and context.is_remote else 0)
    return _pack_u32(flags)


def _span(span: ReadableSpan) -> bytes:
    if type(span) is ImageSpan and type(span._attributes) is dict and type(span._links) is tuple:
        # An image span as started (see imgbench.observe.spans): its fields as they are,
        # without the ReadableSpan properties' copies (nothing dropped: no bounded containers).
        context, parent, name = span._context, span._parent, span._name
        kind, start, end, status = span._kind, span._start_time, span._end_time, span._status
        attributes: Any = span._attributes
        links: Sequence[Link] = span._links
        dropped_attributes = dropped_events = dropped_links = 0
    else:
        context, parent, name = span.get_span_context(), span.parent, span.name
        kind, start, end, status = span.kind, span.start_time, span.end_time, span.status
        attributes, links = span.attributes, span.links
        dropped_attributes, dropped_events = span.dropped_attributes, span.dropped_events
        dropped_links = span.dropped_links
    assert context is not None
    parts = [
        b"\x0a\x10" + context.trace_id.to_bytes(16, "big"),
        b"\x12\x08" + context.span_id.to_bytes(8, "big"),
    ]
    state = ",".join(f"{k}={v}" for k, v in (context.trace_state or {}).items())
    if state:
        parts.append(_field(b"\x1a", state.encode()))
    if parent is not None:
        parts.append(b"\x22\x08" + parent.span_id.to_bytes(8, "big"))
    if name:
        parts.append(_field(b"\x2a", name.encode()))
    parts.append(b"\x30" + _varint(_KINDS[kind]))
    if start:
        parts.append(b"\x39" + _pack_u64(start))
    if end:
        parts.append(b"\x41" + _pack_u64(end))
    parts += _attributes(b"\x4a", attributes)
    if dropped_attributes:
        parts.append(b"\x50" + _varint(dropped_attributes))
    if dropped_events:
        parts.append(b"\x60" + _varint(dropped_events))
    for link in links:
        link_parts = [
            b"\x0a\x10" + link.context.trace_id.to_bytes(16, "big"),
            b"\x12\x08" + link.context.span_id.to_bytes(8, "big"),
            *_attributes(b"\x22", link.attributes),
        ]
        if link.dropped_attributes:
            link_parts.append(b"\x28" + _varint(link.dropped_attributes))
        link_parts.append(b"\x35" + _flags(link.context))
        parts.append(_field(b"\x6a", b"".join(link_parts)))
    if dropped_links:
        parts.append(b"\x70" + _varint(dropped_links))
    if status.description or status.status_code.value:
        status_parts = []
        if status.description:
            status_parts.append(_field(b"\x12", status.description.encode()))
        if status.status_code.value:
            status_parts.append(b"\x18" + _varint(status.status_code.value))
        parts.append(_field(b"\x7a", b"".join(status_parts)))
    else:
        parts.append(b"\x7a\x00")  # always present, as the library's (empty when unset)
    parts.append(b"\x85\x01" + _flags(parent))
    return b"".join(parts)


def encode_request(spans: Sequence[ReadableSpan]) -> bytes | None:
    """The serialized ``ExportTraceServiceRequest`` of ``spans``; None when a span has
    something this does not encode (events): the caller uses the library then."""
    # resource -> scope -> encoded spans, merging equal values in first-seen order as
    # the library does, with one hash per distinct object (Resource hashes its
    # attributes through json.dumps).
    groups: dict[Any, dict[Any, list[bytes]]] = {}
    resources: dict[int, dict[Any, list[bytes]]] = {}
    scopes: dict[tuple[int, int], list[bytes]] = {}
    for span in spans:
        if span.events:
            return None
        resource, scope = span.resource, span.instrumentation_scope
        key = (id(resource), id(scope))
        bucket = scopes.get(key)
        if bucket is None:
            by_scope = resources.get(id(resource))
            if by_scope is None:
                by_scope = resources[id(resource)] = groups.setdefault(resource, {})
            bucket = scopes[key] = by_scope.setdefault(scope, [])
        bucket.append(_span(span))
    out = []
    for resource, by_scope in groups.items():
        scope_spans = []
        for scope, encoded in by_scope.items():
            body = [_field(b"\x0a", _encode_instrumentation_scope(scope).SerializeToString())]
            body += [_field(b"\x12", s) for s in encoded]
            if scope is not None and scope.schema_url:
                body.append(_field(b"\x1a", scope.schema_url.encode()))
            scope_spans.append(_field(b"\x12", b"".join(body)))
        head = _field(b"\x0a", _encode_resource(resource).SerializeToString())
        tail = _field(b"\x1a", resource.schema_url.encode()) if resource.schema_url else b""
        out.append(_field(b"\x0a", head + b"".join(scope_spans) + tail))
    return b"".join(out)


def translate(spans: Sequence[ReadableSpan]) -> ExportTraceServiceRequest:
    """The request the library's encoder builds for ``spans``, built by :func:`encode_request`."""
    encoded = encode_request(spans)
    if encoded is None:
        return encode_spans(spans)
    return ExportTraceServiceRequest.FromString(encoded)


class FastOTLPSpanExporter(OTLPSpanExporter):
    """The library's OTLP/gRPC span exporter with :func:`translate` as its encoder."""

    def _translate_data(self, data: Sequence[ReadableSpan]) -> ExportTraceServiceRequest:
        return translate(data)


class FastOTLPHttpSpanExporter(HttpOTLPSpanExporter):
    """The library's OTLP/HTTP span exporter, sending :func:`encode_request`'s bytes.

    The library's ``export`` encodes inline (it has no hook like the gRPC
    exporter's ``_translate_data``), so this one repeats its steps around the
    encoding: the exporter's own metrics and the client's POST with its retries,
    timeout, headers and compression. Everything else goes to the library's
    ``export``: a batch this does not encode (span events), one above the
    request size limit (the library drops it and says why), a shut-down
    exporter, and an installed library without that client (``_client``, from
    opentelemetry-exporter-otlp-proto-http 1.4x).
    """

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        client = getattr(self, "_client", None)
        metrics = getattr(self, "_metrics", None)
        if client is None or metrics is None or getattr(self, "_shutdown", True):
            return super().export(spans)
        encoded = encode_request(spans)
        limit = getattr(self, "_max_request_size", 0)
        if encoded is None or 0 < limit < len(encoded):
            return super().export(spans)
        with metrics.export_operation(len(spans)) as result:
            sent = client.export(encoded)
            if not sent.success:
                result.error = sent.error
                if sent.status_code is not None:
                    result.error_attrs = {HTTP_RESPONSE_STATUS_CODE: sent.status_code}
                return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS
