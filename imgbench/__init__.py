"""imgbench: measure WebSocket against gRPC for sending images, with evidence.

Layering: the modules of this package are the shared core (wire codec,
settings, statistics, telemetry, HTTP plumbing). They never import the
``receiver`` or ``transmitter`` packages; only :mod:`imgbench.cli`, the
composition root behind the ``imgbench`` command, wires them together.
"""

from __future__ import annotations

__version__ = "0.1.0"
