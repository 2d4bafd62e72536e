"""Keep the garbage collector off the objects that live as long as the process.

A service holds about 50,000 objects from start-up on (modules, the gRPC and
OpenTelemetry machinery, settings) that never become garbage. CPython's full
(generation 2) collection walks all of them, about 30 ms here, and the objects
each image allocates (spans, their attributes, metric samples, log events) make
those collections come every few hundred images: measured, 0.14 ms per 1 MiB
image on the transmitter with telemetry on, a few per cent of its CPU.
:func:`freeze_after_startup` collects once and moves everything alive to the
permanent generation (``gc.freeze``), so later collections only look at what
was allocated since; garbage made later is collected as before.

Process-wide state, like :mod:`imgbench.runtime.alloc`: called once by each
entry point when its start-up is done (:class:`imgbench.runtime.lifecycle.Lifecycle`
after ``start``, the one-shot transmitter and ``imgbench compare`` before the
first image), never by a constructor.
"""

from __future__ import annotations

import gc


def freeze_after_startup() -> int:
    """Collect, then freeze every object alive now; the number of frozen objects.

    Idempotent in effect (a second call freezes what was allocated since).
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
