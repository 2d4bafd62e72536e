"""Each package's public names are exactly these (after httpx's test_exported_members).

Adding or removing a public name is a deliberate change to this list.
"""

from __future__ import annotations

import importlib

import pytest

EXPORTS = {
    "imgbench.wire": [
        "MODES", "PROTOCOLS", "Ack", "ChunkAssembler", "Clock", "Exchange", "HeadTemplate",
        "ImageMessage",
        "ImageMeta", "ProbeInfo", "ProbeReply", "decode_ack", "decode_image",
        "decode_json_image", "decode_probe_reply", "digest", "encode_ack", "encode_probe",
        "encode_probe_reply",
        "encode_chunks", "encode_image", "encode_image_parts", "encode_json_image", "read_clock",
    ],
    "imgbench.measure": [
        "NS", "Comparison", "Figures", "ProtocolRun", "RatioCI", "Sample", "Summary",
        "bootstrap_ratio_ci", "compute_figures", "summarize", "verdict",
    ],
    "imgbench.config": [
        "COMPARE_OPTIONS", "EXTERNAL_ONLY", "MIB", "RECEIVER_OPTIONS", "REPORT_OPTIONS",
        "SAVED_REPORT_OPTIONS",
        "TRANSMITTER_OPTIONS", "CompareSettings", "ObserveSettings", "Option", "PushSettings",
        "ReceiverSettings", "ReportSettings", "SecuritySettings", "ServiceSettings",
        "TargetSettings", "TransmitterSettings", "TransportSettings", "WorkloadSettings",
        "add_arguments",
        "override_workload", "parse_size", "receiver_settings", "report_settings",
        "transmitter_settings",
    ],
    "imgbench.observe": [
        "ReceiverMetrics", "TransmitterMetrics", "configure_logging",
        "context_from_traceparent", "get_logger", "new_registry", "tracer_provider",
        "traceparent",
    ],
    "imgbench.runtime": ["HttpServer", "Request", "Response", "metrics_handler"],
    "imgbench.report": [
        "CSV_COLUMNS", "MODE_HATCHES", "MODE_LINESTYLES", "PROTOCOL_COLORS", "CsvSample",
        "Outputs", "PlotsUnavailableWarning", "Table", "clock_lines", "compare_results",
        "comparison_table",
        "load_samples_csv", "plots_available", "regenerate", "settings_line",
        "summary_markdown", "summary_table", "verdict_lines", "write_outputs",
        "write_sweep_outputs",
    ],
}  # fmt: skip


@pytest.mark.parametrize("package", sorted(EXPORTS))
def test_package_exports_exactly_its_list(package: str) -> None:
    module = importlib.import_module(package)
    assert sorted(module.__all__) == sorted(EXPORTS[package])
    for name in module.__all__:
        assert getattr(module, name) is not None, name
    # Nothing public is defined in the package that __all__ forgets.
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and getattr(value, "__module__", "").startswith(package)
        and not isinstance(value, type(importlib))
    }
    assert public <= set(module.__all__)
