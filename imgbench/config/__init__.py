"""Settings: one table of options (flag, environment variable, cast, default, check).

:mod:`imgbench.config.settings` turns command-line flags and ``IMGBENCH_*``
environment variables into frozen settings dataclasses; a bad value raises
:class:`imgbench.errors.ConfigError` naming the setting (the CLI exits 2).
"""

from __future__ import annotations

from imgbench.config.settings import (
    COMPARE_OPTIONS,
    RECEIVER_OPTIONS,
    TRANSMITTER_OPTIONS,
    ObserveSettings,
    Option,
    ReceiverSettings,
    TransmitterSettings,
    receiver_settings,
    transmitter_settings,
)

__all__ = [
    "COMPARE_OPTIONS",
    "RECEIVER_OPTIONS",
    "TRANSMITTER_OPTIONS",
    "ObserveSettings",
    "Option",
    "ReceiverSettings",
    "TransmitterSettings",
    "receiver_settings",
    "transmitter_settings",
]
