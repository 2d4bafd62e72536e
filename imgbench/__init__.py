"""imgbench: measure WebSocket against gRPC for sending images, with evidence.

Layering: the modules of this package are the shared core (wire codec,
settings, statistics, telemetry, HTTP plumbing). They never import the
``receiver`` or ``transmitter`` packages; only :mod:`imgbench.cli`, the
composition root behind the ``imgbench`` command, wires them together.
"""

from __future__ import annotations

import os as _os

__version__ = "0.1.0"

# grpc core logs one INFO line per failed TLS handshake on a gRPC TLS listener, i.e.
# per plain-text or untrusting client: an unbounded log a stranger controls (README
# "Security"). grpc reads this once, when it is first imported, so it is set here,
# before any module imports grpc; an explicit GRPC_VERBOSITY wins.
_os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
