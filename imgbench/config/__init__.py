"""Settings: one table of options (flag, environment variable, cast, default, check).

- :mod:`~imgbench.config.option`: the :class:`Option` type, its parsers and checks;
- the option tables, by who reads them: :mod:`~imgbench.config.shared_options`
  (both services: observability, transport, TLS and the token, the receiver's ports),
  :mod:`~imgbench.config.receiver_options`, :mod:`~imgbench.config.transmitter_options`,
  :mod:`~imgbench.config.report_options`;
- :mod:`~imgbench.config.settings`: the frozen settings dataclasses, whose
  defaults are read from the tables (each default is written once);
- :mod:`~imgbench.config.resolve`: flags and ``IMGBENCH_*``/``RECEIVER_*``/...
  environment variables to settings; a bad value raises
  :class:`imgbench.errors.ConfigError` naming the setting (the CLI exits 2);
- :mod:`~imgbench.config.thresholds`: the ``--threshold`` grammar.
"""

from __future__ import annotations

from imgbench.config.option import MIB, Option, parse_size
from imgbench.config.receiver_options import RECEIVER_OPTIONS
from imgbench.config.report_options import REPORT_OPTIONS, SAVED_REPORT_OPTIONS
from imgbench.config.resolve import (
    add_arguments,
    override_workload,
    receiver_settings,
    report_settings,
    transmitter_settings,
)
from imgbench.config.settings import (
    CompareSettings,
    ObserveSettings,
    PushSettings,
    ReceiverSettings,
    ReportSettings,
    SecuritySettings,
    ServiceSettings,
    TargetSettings,
    TransmitterSettings,
    TransportSettings,
    WorkloadSettings,
)
from imgbench.config.transmitter_options import (
    COMPARE_OPTIONS,
    EXTERNAL_ONLY,
    TRANSMITTER_OPTIONS,
)

__all__ = [
    "COMPARE_OPTIONS",
    "EXTERNAL_ONLY",
    "MIB",
    "RECEIVER_OPTIONS",
    "REPORT_OPTIONS",
    "SAVED_REPORT_OPTIONS",
    "TRANSMITTER_OPTIONS",
    "CompareSettings",
    "ObserveSettings",
    "Option",
    "PushSettings",
    "ReceiverSettings",
    "ReportSettings",
    "SecuritySettings",
    "ServiceSettings",
    "TargetSettings",
    "TransmitterSettings",
    "TransportSettings",
    "WorkloadSettings",
    "add_arguments",
    "override_workload",
    "parse_size",
    "receiver_settings",
    "report_settings",
    "transmitter_settings",
]
