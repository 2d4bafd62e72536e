"""OpenTelemetry configuration from the standard variables (issue 13, section 3)."""

from __future__ import annotations

import io
from collections.abc import Sequence

import pytest
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    DEFAULT_ON,
    ParentBasedTraceIdRatio,
    TraceIdRatioBased,
)

from imgbench import __version__
from imgbench.errors import ConfigError
from imgbench.observe import tracing
from imgbench.observe.logs import configure_logging
from imgbench.observe.tracing import ReportingExporter

OTEL_VARIABLES = (
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_TRACES_EXPORTER",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_SDK_DISABLED",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in OTEL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_builtin_service_name_and_version_without_any_variable() -> None:
    attrs = tracing.service_resource("imgbench-receiver").attributes
    assert attrs[SERVICE_NAME] == "imgbench-receiver"
    assert attrs[SERVICE_VERSION] == __version__


def test_resource_attributes_outrank_the_builtin_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=lab-rx,deployment.environment=lab")
    attrs = tracing.service_resource("imgbench-receiver").attributes
    assert attrs[SERVICE_NAME] == "lab-rx"
    assert attrs["deployment.environment"] == "lab"
    assert attrs[SERVICE_VERSION] == __version__


def test_service_name_variable_outranks_resource_attributes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=lab-rx,service.version=9")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "named")
    attrs = tracing.service_resource("imgbench-receiver").attributes
    assert attrs[SERVICE_NAME] == "named"
    assert attrs[SERVICE_VERSION] == "9"  # the environment outranks the built-in version too


def test_the_provider_uses_the_resource(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-env")
    provider = tracing.tracer_provider("imgbench-transmitter")
    try:
        assert provider.resource.attributes[SERVICE_NAME] == "from-env"
    finally:
        provider.shutdown()


@pytest.mark.parametrize(
    ("generic", "traces", "expected"),
    [
        (None, None, "grpc"),
        ("http/protobuf", None, "http/protobuf"),
        ("grpc", "http/protobuf", "http/protobuf"),
        ("http/protobuf", "grpc", "grpc"),
    ],
)
def test_protocol_traces_variable_first_then_generic_then_grpc(
    generic: str | None, traces: str | None, expected: str
) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"}
    if generic:
        env["OTEL_EXPORTER_OTLP_PROTOCOL"] = generic
    if traces:
        env["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"] = traces
    assert tracing.otlp_protocol(env) == expected


@pytest.mark.parametrize(
    ("name", "value"),
    [("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"), ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "udp")],
)
def test_unsupported_protocol_is_refused_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        tracing.otlp_protocol({name: value})
    assert info.value.setting == name


def test_http_endpoint_gets_the_signal_path_grpc_does_not() -> None:
    base = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"}
    assert tracing.otlp_endpoint(base) == "http://c:4318/"
    http = {**base, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}
    assert tracing.otlp_endpoint(http) == "http://c:4318/v1/traces"
    signal = {**http, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:1/x"}
    assert tracing.otlp_endpoint(signal) == "http://t:1/x"


def test_the_exporter_class_follows_the_protocol() -> None:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as Grpc
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as Http

    for protocol, cls in (("grpc", Grpc), ("http/protobuf", Http)):
        exporter = tracing.otlp_exporter(
            {"OTEL_EXPORTER_OTLP_PROTOCOL": protocol, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:1"}
        )
        try:
            assert isinstance(exporter._inner, cls)
        finally:
            exporter.shutdown()


def test_export_switches() -> None:
    endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"}
    assert tracing.otlp_configured(endpoint)
    assert tracing.otlp_configured({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4317"})
    assert not tracing.otlp_configured({})
    assert not tracing.otlp_configured({**endpoint, "OTEL_TRACES_EXPORTER": "none"})
    assert not tracing.otlp_configured({**endpoint, "OTEL_SDK_DISABLED": "true"})
    with pytest.raises(ConfigError) as info:
        tracing.otlp_configured({**endpoint, "OTEL_TRACES_EXPORTER": "zipkin"})
    assert info.value.setting == "OTEL_TRACES_EXPORTER"


def test_sampler_from_the_standard_variables() -> None:
    assert tracing.sampler({}) is DEFAULT_ON
    assert tracing.sampler({"OTEL_TRACES_SAMPLER": "always_off"}) is ALWAYS_OFF
    ratio = tracing.sampler(
        {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"}
    )
    assert isinstance(ratio, TraceIdRatioBased) and ratio.rate == 0.25
    parent = tracing.sampler({"OTEL_TRACES_SAMPLER": "parentbased_traceidratio"})
    assert isinstance(parent, ParentBasedTraceIdRatio)


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"OTEL_TRACES_SAMPLER": "sometimes"}, "OTEL_TRACES_SAMPLER"),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"},
         "OTEL_TRACES_SAMPLER_ARG"),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "half"},
         "OTEL_TRACES_SAMPLER_ARG"),
    ],
)  # fmt: skip
def test_bad_sampler_is_refused_naming_the_variable(env: dict[str, str], setting: str) -> None:
    with pytest.raises(ConfigError) as info:
        tracing.sampler(env)
    assert info.value.setting == setting


def test_the_sampler_is_applied(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    provider = tracing.tracer_provider("imgbench-receiver")
    try:
        with provider.get_tracer("t").start_as_current_span("s") as span:
            assert not span.get_span_context().trace_flags.sampled
    finally:
        provider.shutdown()


def test_cli_exits_2_naming_a_bad_otel_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from imgbench.cli import main

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json")
    assert main(["compare", "--images", "1"]) == 2
    assert "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL" in capsys.readouterr().err


class _Down(SpanExporter):
    """An exporter whose backend is down for the first ``failures`` batches."""

    def __init__(self, failures: int) -> None:
        self.failures = failures

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self.failures:
            self.failures -= 1
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS


def test_a_failing_export_is_logged_once_then_recovery_and_a_summary() -> None:
    stream = io.StringIO()
    configure_logging("json", "info", stream=stream)
    exporter = ReportingExporter(_Down(3), endpoint="http://c:4317", protocol="grpc")
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("t")
    try:
        for i in range(5):
            with tracer.start_as_current_span(f"s{i}"):
                pass
        provider.shutdown()
    finally:
        configure_logging("console", "warning")
    out = stream.getvalue()
    assert out.count("spans could not be exported") == 1
    assert out.count("span export works again") == 1
    assert out.count("tracing: spans lost") == 1
    assert (exporter.failed_batches, exporter.failed_spans, exporter.exported_spans) == (3, 3, 2)


def test_two_exporters_each_report_their_own_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    """Receiver and transmitter in one process (as the tests host them): each line names
    the failure of its own exporter, read on the thread that exported."""
    import socket
    import threading

    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])  # closed again: connection refused
    stream = io.StringIO()
    configure_logging("json", "info", stream=stream)
    exporters = [
        ReportingExporter(
            OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces"),
            endpoint=str(port),
            protocol="http/protobuf",
        )
        for port in ports
    ]

    def export_one(exporter: ReportingExporter) -> None:
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        with provider.get_tracer("t").start_as_current_span("s"):
            pass
        provider.shutdown()

    try:
        threads = [threading.Thread(target=export_one, args=(e,)) for e in exporters]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    finally:
        configure_logging("console", "warning")
    import json

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    first = {
        line["endpoint"]: line["reason"]
        for line in lines
        if "could not be exported" in line["event"]
    }
    assert set(first) == {str(p) for p in ports}
    # Each line carries a line its own exporter logged (not the no-detail fallback).
    for port, reason in first.items():
        assert reason and reason != "the exporter reported a failure", (port, reason)
        assert "export" in reason.lower()
    assert not [line for line in lines if line.get("logger", "").startswith("opentelemetry")]
