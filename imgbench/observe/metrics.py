"""Prometheus metrics of both services: names, labels, buckets.

Names, labels and units are part of the product (users query them by hand);
the README lists each one. Label values are bounded: ``protocol`` and
``mode`` come from :data:`imgbench.wire.MODES` (plus the ``push`` mode),
``direction`` from :data:`imgbench.wire.names.DIRECTIONS` (a function of the
mode: ``push`` for the push mode, ``upload`` otherwise), ``reason`` from
:data:`REJECT_REASONS` / :data:`SEND_ERROR_REASONS`, ``stat`` from
:data:`STATS`, and the per-image ``sequence`` label only exists for the first
:data:`PER_IMAGE_SERIES` images of the last run. Run ids never become labels.

Every service gets its own :class:`~prometheus_client.CollectorRegistry` with
the process, platform and GC collectors, so two services can live in one test
process without clashing, and each still exports its CPU and memory figures.
"""

from __future__ import annotations

import time
from typing import Any, Final

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from imgbench.errors import WIRE_ERRORS
from imgbench.measure.results import Figures
from imgbench.measure.stats import Summary
from imgbench.wire import MODES
from imgbench.wire.names import PUSH_MODE, direction_of

#: Histogram buckets in seconds: a 1-2-5 series from 50 µs to 30 s, i.e. three
#: roughly log-spaced buckets per decade, covering loopback (~100 µs) up to a
#: 20 MiB image over a slow link.
TRANSMISSION_BUCKETS: Final = (
    50e-6,
    100e-6,
    200e-6,
    500e-6,
    1e-3,
    2e-3,
    5e-3,
    10e-3,
    20e-3,
    50e-3,
    0.1,
    0.2,
    0.5,
    1.0,
    2.0,
    5.0,
    10.0,
    20.0,
    30.0,
)

#: Why the receiver refused a message (``imgbench_rejected_messages_total``).
REJECT_REASONS: Final = tuple(cls.reason for cls in WIRE_ERRORS)
#: ``status`` values of ``imgbench_http_refusals_total``; any other error status is "other".
HTTP_REFUSAL_STATUSES: Final = ("400", "401", "403", "404", "405", "408", "409", "413",
                                "414", "426", "431", "500", "501", "503", "505")  # fmt: skip
#: Kinds of rate-limited receiver warnings (``imgbench_log_lines_suppressed_total{kind}``).
LOG_KINDS: Final = (
    *REJECT_REASONS,
    "disconnect",
    "integrity",
    "clock_estimate",
    "subscription",
    "unauthenticated",
)
#: Where a request without the right bearer token was refused
#: (``imgbench_unauthenticated_requests_total{transport}``).
AUTH_TRANSPORTS: Final = ("websocket", "grpc", "http")
#: Why the transmitter failed to deliver an image (``imgbench_send_errors_total``).
SEND_ERROR_REASONS: Final = (
    "connect",  # could not connect before the deadline
    "timeout",  # no acknowledgement within the image timeout
    "disconnect",  # connection closed mid-run
    "rejected",  # the receiver refused the message
    "integrity",  # the receiver reported a checksum mismatch
)
#: Why the receiver did not subscribe to a transmitter's push server
#: (``imgbench_subscription_refusals_total``).
SUBSCRIPTION_REFUSALS: Final = (
    "invalid",  # the POST /v1/subscriptions body was malformed
    "busy",  # RECEIVER_MAX_SUBSCRIPTIONS were already open
    "unreachable",  # the push server could not be reached
    "unauthenticated",  # the push server refused our bearer token (401 / UNAUTHENTICATED)
)
STATS: Final = ("min", "p50", "p90", "p99", "max", "mean")
#: How a run's transmission times relate to the clocks (``imgbench_run_clock_status``).
CLOCK_STATUSES: Final = ("shared", "corrected", "uncorrected")
#: Per-image gauges of the last run exist for sequence numbers below this.
PER_IMAGE_SERIES: Final = 100

PROTOCOL_MODES: Final = tuple((p, m) for p, modes in MODES.items() for m in modes)
#: Every (protocol, mode, direction) a per-image series can have: the upload
#: modes, and the push mode of each protocol.
SERIES_LABELS: Final = tuple(
    (p, m, direction_of(m)) for p, m in (*PROTOCOL_MODES, *((p, PUSH_MODE) for p in MODES))
)
#: Label names of the per-image metrics and last-run gauges.
PMD: Final = ("protocol", "mode", "direction")


def labels_of(protocol: str, mode: str) -> tuple[str, str, str]:
    """The label values of ``protocol``/``mode``: the direction follows from the mode."""
    return protocol, mode, direction_of(mode)


def new_registry() -> CollectorRegistry:
    """A registry with the process, platform and GC collectors (CPU, memory).

    Without the ``*_created`` series: client_python exposes one per counter and
    histogram child by default, doubling the series count for a timestamp no
    panel or rule reads. The switch is process-wide in client_python and read
    at every scrape, so calling it here covers every registry of the process.
    """
    disable_created_metrics()  # type: ignore[no-untyped-call]
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def unauthenticated_counter(registry: CollectorRegistry) -> Counter:
    """``imgbench_unauthenticated_requests_total{transport}``, children created up front."""
    counter = Counter(
        "imgbench_unauthenticated_requests",
        "Requests refused for a missing or wrong bearer token (IMGBENCH_TOKEN), by transport:"
        " a WebSocket handshake (HTTP 401), a gRPC call (UNAUTHENTICATED), an HTTP API"
        " request (401).",
        ("transport",),
        registry=registry,
    )
    for transport in AUTH_TRANSPORTS:
        counter.labels(transport)
    return counter


def http_refusals_counter(registry: CollectorRegistry) -> Counter:
    """``imgbench_http_refusals_total{server,status}``, the same on both services."""
    return Counter(
        "imgbench_http_refusals",
        "HTTP requests answered with an error status, by server (api: the service's HTTP"
        " API; websocket: a refused WebSocket handshake, receiver only) and status"
        " (HTTP_REFUSAL_STATUSES, else other).",
        ("server", "status"),
        registry=registry,
    )


def http_refused(counter: Counter, server: str, status: int) -> None:
    """Count one HTTP error answer under its status label (thread-safe)."""
    label = str(status) if str(status) in HTTP_REFUSAL_STATUSES else "other"
    counter.labels(server, label).inc()


class _RunGauges:
    """Last-completed-run gauges shared by both services."""

    def __init__(self, registry: CollectorRegistry, side: str) -> None:
        labels = PMD
        self.total_transfer = Gauge(
            "imgbench_run_total_transfer_seconds",
            f"Last completed run ({side}): first send start to last receive-complete"
            " (receiver) or last ack (transmitter), delays included.",
            labels,
            registry=registry,
        )
        self.images = Gauge(
            "imgbench_run_images",
            f"Last completed run ({side}): measured images (warm-up excluded).",
            labels,
            registry=registry,
        )
        self.completed = Gauge(
            "imgbench_run_completed_timestamp_seconds",
            f"Unix time at which the last run ({side}) completed.",
            labels,
            registry=registry,
        )
        self.clock_offset = Gauge(
            "imgbench_run_clock_offset_seconds",
            f"Last completed run ({side}): estimated receiver clock minus transmitter clock"
            " at the first probe group (0 when shared or unknown).",
            labels,
            registry=registry,
        )
        self.clock_bound = Gauge(
            "imgbench_run_clock_bound_seconds",
            f"Last completed run ({side}): largest error of the clock offset estimate"
            " (0 when shared or unknown).",
            labels,
            registry=registry,
        )
        self.clock_drift = Gauge(
            "imgbench_run_clock_drift_ratio",
            f"Last completed run ({side}): estimated clock drift (seconds per second;"
            " 1e-6 = 1 ppm), 0 when not measured.",
            labels,
            registry=registry,
        )
        self.clock_status = Gauge(
            "imgbench_run_clock_status",
            f"Last completed run ({side}): 1 for how its transmission times relate to the"
            " clocks (shared, corrected, uncorrected), 0 for the others.",
            (*labels, "status"),
            registry=registry,
        )

    def clock_estimated(self, protocol: str, mode: str, clock: dict[str, object]) -> None:
        """Publish a run's clock estimate (``RunRecord.clock_dict`` / ``ProtocolRun.clock``)."""
        status = str(clock.get("status", "uncorrected"))
        pmd = labels_of(protocol, mode)
        for name in CLOCK_STATUSES:
            self.clock_status.labels(*pmd, name).set(1 if name == status else 0)
        measured = status == "corrected"

        def number(key: str, scale: float) -> float:
            value = clock.get(key)
            return float(value) * scale if measured and isinstance(value, int | float) else 0.0

        self.clock_offset.labels(*pmd).set(number("offset_ns", 1e-9))
        self.clock_bound.labels(*pmd).set(number("bound_ns", 1e-9))
        self.clock_drift.labels(*pmd).set(number("drift_ppm", 1e-6))


def _set_stats(gauge: Gauge, protocol: str, mode: str, summary: Summary) -> None:
    for stat in STATS:
        gauge.labels(*labels_of(protocol, mode), stat).set(getattr(summary, stat))


class ReceiverMetrics:
    """The receiver's metrics (see the README's metrics table)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else new_registry()
        r = self.registry
        pm = PMD
        self.transmission = Histogram(
            "imgbench_transmission_seconds",
            "Per-image transmission time: receive-complete minus scheduled send start.",
            pm,
            buckets=TRANSMISSION_BUCKETS,
            registry=r,
        )
        self.images = Counter(
            "imgbench_images_received",
            "Measured images accepted (warm-up excluded).",
            pm,
            registry=r,
        )
        self.bytes = Counter(
            "imgbench_bytes_received",
            "Image payload bytes of measured images accepted.",
            pm,
            registry=r,
        )
        self.warmup = Counter(
            "imgbench_warmup_images_received",
            "Warm-up images accepted (not measured).",
            pm,
            registry=r,
        )
        self.integrity = Counter(
            "imgbench_integrity_failures",
            "Images whose length or SHA-256 did not match the message's declaration.",
            pm,
            registry=r,
        )
        self.rejected = Counter(
            "imgbench_rejected_messages",
            "Messages refused before measurement, by reason.",
            ("protocol", "reason"),
            registry=r,
        )
        self.upload_buffer = Gauge(
            "imgbench_upload_buffer_bytes",
            "Bytes reserved by chunked uploads in progress (bounded by"
            " RECEIVER_MAX_UPLOAD_BUFFER_BYTES).",
            registry=r,
        )
        self.runs_evicted = Counter(
            "imgbench_runs_evicted",
            "Runs dropped from memory to make room for a new run, by state:"
            " finished, or abandoned (unfinished, idle for RECEIVER_RUN_IDLE_TIMEOUT).",
            ("state",),
            registry=r,
        )
        self.log_suppressed = Counter(
            "imgbench_log_lines_suppressed",
            "Warning lines not written because their kind exceeded RECEIVER_LOG_BURST per"
            " RECEIVER_LOG_WINDOW; kind: a reject reason, disconnect, integrity, clock_estimate,"
            " subscription.",
            ("kind",),
            registry=r,
        )
        self.http_refusals = http_refusals_counter(r)
        self.disconnects = Counter(
            "imgbench_disconnects",
            "Connections or streams that ended abnormally (no clean close), e.g. mid-run.",
            ("protocol",),
            registry=r,
        )
        self.probes = Counter(
            "imgbench_clock_probes",
            "Clock probes answered (contract revision 2).",
            pm,
            registry=r,
        )
        self.subscription_refusals = Counter(
            "imgbench_subscription_refusals",
            "Push subscriptions refused or failed before any image, by reason.",
            ("reason",),
            registry=r,
        )
        for reason in SUBSCRIPTION_REFUSALS:
            self.subscription_refusals.labels(reason)
        self.unauthenticated = unauthenticated_counter(r)
        self.in_flight = Gauge(
            "imgbench_images_in_flight",
            "Images received and not yet acknowledged.",
            registry=r,
        )
        self.run = _RunGauges(r, "receiver")
        self.cumulative = Gauge(
            "imgbench_run_cumulative_transmission_seconds",
            "Last completed run: sum of the per-image transmission times.",
            pm,
            registry=r,
        )
        self.run_stats = Gauge(
            "imgbench_run_transmission_seconds",
            "Last completed run: exact per-image transmission time statistics.",
            (*PMD, "stat"),
            registry=r,
        )
        self.run_throughput = Gauge(
            "imgbench_run_throughput_bytes_per_second",
            "Last completed run: image bytes divided by cumulative transmission time.",
            pm,
            registry=r,
        )
        self.per_image = Gauge(
            "imgbench_run_image_transmission_seconds",
            f"Last completed run: transmission time of image `sequence`"
            f" (first {PER_IMAGE_SERIES} images only).",
            (*PMD, "sequence"),
            registry=r,
        )
        # Children created up front: series exist at 0 before the first image,
        # so increase() also sees the first run.
        for series in SERIES_LABELS:
            for metric in (
                self.transmission,
                self.images,
                self.bytes,
                self.warmup,
                self.integrity,
                self.probes,
            ):
                metric.labels(*series)
        for protocol in MODES:
            self.disconnects.labels(protocol)
            for reason in REJECT_REASONS:
                self.rejected.labels(protocol, reason)
        for kind in LOG_KINDS:
            self.log_suppressed.labels(kind)
        self._image_children: dict[tuple[str, str], tuple[Any, Any, Any]] = {}
        #: Counter series by (counter, protocol, mode): see :meth:`_series`.
        self._counter_children: dict[tuple[int, str, str], Counter] = {}

    def _series(self, counter: Counter, protocol: str, mode: str) -> Counter:
        """``counter``'s series for ``protocol``/``mode``, looked up once (``labels()``
        validates and locks on every call; protocol and mode are decoded and checked
        against the known modes, a bounded set)."""
        key = (id(counter), protocol, mode)
        child = self._counter_children.get(key)
        if child is None:
            child = self._counter_children[key] = counter.labels(*labels_of(protocol, mode))
        return child

    def probe_answered(self, protocol: str, mode: str) -> None:
        """One clock probe answered (per probe: its series looked up once)."""
        self._series(self.probes, protocol, mode).inc()

    def warmup_received(self, protocol: str, mode: str) -> None:
        """One warm-up image received (its series looked up once)."""
        self._series(self.warmup, protocol, mode).inc()

    def image_received(
        self, protocol: str, mode: str, seconds: float, image_bytes: int, trace_id: str
    ) -> None:
        """One measured image: its transmission time (exemplar: its trace), count and bytes.

        The label children are looked up once per protocol/mode (``labels()``
        validates and locks on every call); ``protocol``/``mode`` come decoded
        and checked against the known modes, a bounded set.
        """
        children = self._image_children.get((protocol, mode))
        if children is None:
            labels = labels_of(protocol, mode)
            children = (
                self.transmission.labels(*labels),
                self.images.labels(*labels),
                self.bytes.labels(*labels),
            )
            self._image_children[(protocol, mode)] = children
        transmission, images, received = children
        transmission.observe(seconds, exemplar={"trace_id": trace_id})
        images.inc()
        received.inc(image_bytes)

    def clock_estimated(self, protocol: str, mode: str, clock: dict[str, object]) -> None:
        """Publish a completed run's clock estimate (again when a later probe group refines it)."""
        self.run.clock_estimated(protocol, mode, clock)

    def http_refused(self, server: str, status: int) -> None:
        """Count an HTTP error answer (thread-safe: the API runs on its own thread)."""
        http_refused(self.http_refusals, server, status)

    def run_completed(
        self, protocol: str, mode: str, figures: Figures, per_image: list[tuple[int, float]]
    ) -> None:
        """Publish the figures of a completed run (replacing the previous run's)."""
        pmd = labels_of(protocol, mode)
        self.run.total_transfer.labels(*pmd).set(figures.total_transfer_s)
        self.run.images.labels(*pmd).set(figures.images)
        self.cumulative.labels(*pmd).set(figures.cumulative_transmission_s)
        self.run_throughput.labels(*pmd).set(figures.throughput_mb_s * 1e6)
        _set_stats(self.run_stats, protocol, mode, figures.transmission)
        # Drop the previous run's per-image series so a shorter run leaves no stale bars.
        for labels in list(_children(self.per_image)):
            if labels[:3] == pmd:
                self.per_image.remove(*labels)
        for sequence, seconds in per_image:
            if sequence < PER_IMAGE_SERIES:
                self.per_image.labels(*pmd, str(sequence)).set(seconds)
        self.run.completed.labels(*pmd).set(time.time())


class TransmitterMetrics:
    """The transmitter's metrics."""

    def image_sent(self, protocol: str, mode: str, round_trip_s: float, trace_id: str) -> None:
        """One measured image acknowledged: its round trip (exemplar: its trace), the count.

        The label children are looked up once per protocol/mode (``labels()``
        validates and locks on every call); ``protocol``/``mode`` are the
        harness's own, a bounded set.
        """
        children = self._image_children.get((protocol, mode))
        if children is None:
            labels = labels_of(protocol, mode)
            children = (self.round_trip.labels(*labels), self.sent.labels(*labels))
            self._image_children[(protocol, mode)] = children
        round_trip, sent = children
        round_trip.observe(round_trip_s, exemplar={"trace_id": trace_id})
        sent.inc()

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else new_registry()
        r = self.registry
        pm = PMD
        self.round_trip = Histogram(
            "imgbench_round_trip_seconds",
            "Per-image round-trip time on the transmitter: ack received minus send start.",
            pm,
            buckets=TRANSMISSION_BUCKETS,
            registry=r,
        )
        self.sent = Counter(
            "imgbench_images_sent", "Measured images sent and acknowledged.", pm, registry=r
        )
        self.errors = Counter(
            "imgbench_send_errors",
            "Images not delivered, by reason.",
            ("protocol", "reason"),
            registry=r,
        )
        self.run = _RunGauges(r, "transmitter")
        self.run_stats = Gauge(
            "imgbench_run_round_trip_seconds",
            "Last completed run: exact round-trip time statistics on the transmitter.",
            (*PMD, "stat"),
            registry=r,
        )
        self.runs_in_progress = Gauge(
            "imgbench_runs_in_progress", "Comparisons currently running (0 or 1).", registry=r
        )
        # Push servers and the service API refuse requests without the token too.
        self.unauthenticated = unauthenticated_counter(r)
        # The service API's refusals (408, 503, 400, ...), as the receiver's API counts them.
        self.http_refusals = http_refusals_counter(r)
        self._image_children: dict[tuple[str, str], tuple[Any, Any]] = {}
        for series in SERIES_LABELS:
            self.round_trip.labels(*series)
            self.sent.labels(*series)
        for protocol in MODES:
            for reason in SEND_ERROR_REASONS:
                self.errors.labels(protocol, reason)

    def refused(self, transport: str) -> None:
        """A push server or the service API refused a request without the token."""
        self.unauthenticated.labels(transport).inc()

    def http_refused(self, server: str, status: int) -> None:
        """Count an HTTP error answer of the service API (thread-safe: its own thread)."""
        http_refused(self.http_refusals, server, status)

    def run_completed(self, protocol: str, mode: str, figures: Figures, last_ack_s: float) -> None:
        """Publish the transmitter's view of a completed run.

        ``last_ack_s`` is first send start to last ack, in seconds.
        """
        pmd = labels_of(protocol, mode)
        self.run.total_transfer.labels(*pmd).set(last_ack_s)
        self.run.images.labels(*pmd).set(figures.images)
        _set_stats(self.run_stats, protocol, mode, figures.round_trip)
        self.run.completed.labels(*pmd).set(time.time())


def _children(gauge: Gauge) -> list[tuple[str, ...]]:
    # prometheus_client offers no public way to list a metric's children.
    with gauge._lock:
        return list(gauge._metrics)  # type: ignore[arg-type]
