"""Process-level plumbing shared by both services.

:mod:`imgbench.runtime.alloc` tunes malloc once at start-up;
:mod:`imgbench.runtime.gcfreeze` freezes what start-up built out of the GC's way;
:mod:`imgbench.runtime.http` is the small asyncio HTTP server behind
``/metrics``, ``/healthz`` and the control endpoints;
:mod:`imgbench.runtime.resources` reads CPU time and RSS from the kernel.
"""

from __future__ import annotations

from imgbench.runtime.http import HttpServer, Request, Response, metrics_handler

__all__ = ["HttpServer", "Request", "Response", "metrics_handler"]
