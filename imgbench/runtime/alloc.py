"""Keep freed image-sized buffers mapped, so the next image does not page-fault them in.

Every image passes through several buffers of its own size on each side (the
message, the transport's copies, the payload). With glibc's defaults a freed
block of a few MiB is handed back to the kernel (``munmap``, or a heap trim),
and the next image's buffer of the same size is faulted in again page by page:
about 2,000-4,500 minor faults per 8 MiB image, a few milliseconds, much of it
inside the timed part of a send. Raising the mmap and trim thresholds keeps
that memory in the heap for reuse; the process's peak RSS stays what it was
(the memory was in use at the peak anyway), it is only returned later.

glibc caps the mmap threshold at 32 MiB (``DEFAULT_MMAP_THRESHOLD_MAX`` on
64-bit), so raising it alone left every buffer of 32 MiB or more mmapped and
faulted in afresh per image: gRPC time per MiB at 32 MiB was 2-3x that at
8 MiB. ``M_MMAP_MAX = 0`` makes malloc serve every block from the heap
instead, so large buffers are reused like small ones. The cost is retained,
not peak, memory: freed blocks below the top of the heap stay mapped until
reused, and up to ``TRIM_THRESHOLD`` of free heap at the top is kept; the
bound is stated in the README (Performance).

Only glibc has ``mallopt``; elsewhere, and when the user set any
``MALLOC_*_`` tunable, this does nothing. It is process-wide state, so the
entry points call :func:`keep_image_buffers` once at start-up
(:func:`imgbench.cli.main`, ``python -m benchmarks``), never a constructor.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
from collections.abc import Mapping
from typing import Final

_M_TRIM_THRESHOLD: Final = -1
_M_TOP_PAD: Final = -2
_M_MMAP_THRESHOLD: Final = -3
_M_MMAP_MAX: Final = -4
#: Blocks below this come from the heap (glibc's own dynamic ceiling).
MMAP_THRESHOLD: Final = 32 * 1024 * 1024
#: Free heap kept mapped at the top before trimming: twice the default 64 MiB
#: message limit, so that one image's freed buffers are not trimmed and faulted
#: in again for the next (at 32 MiB they were, for images of 32 MiB and more).
TRIM_THRESHOLD: Final = 128 * 1024 * 1024


def keep_image_buffers(environ: Mapping[str, str] | None = None) -> bool:
    """Tune glibc malloc for large, same-sized buffers; True if applied.

    Idempotent (the same thresholds again). ``environ`` (default
    :data:`os.environ`) is checked for the user's own ``MALLOC_*_`` tunables,
    which win.
    """
    env = os.environ if environ is None else environ
    if platform.libc_ver()[0] != "glibc" or any(
        k.startswith("MALLOC_") and k.endswith("_") for k in env
    ):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
        and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
        and mallopt(_M_TOP_PAD, 0)
        # Above glibc's 32 MiB threshold ceiling only "no mmap at all" keeps blocks.
        and mallopt(_M_MMAP_MAX, 0)
    )
