"""Keep freed image-sized buffers mapped, so the next image does not page-fault them in.

Every image passes through several buffers of its own size on each side (the
message, the transport's copies, the payload). With glibc's defaults a freed
block of a few MiB is handed back to the kernel (``munmap``, or a heap trim),
and the next image's buffer of the same size is faulted in again page by page:
about 2,000-4,500 minor faults per 8 MiB image, a few milliseconds, much of it
inside the timed part of a send. Raising the mmap and trim thresholds keeps
that memory in the heap for reuse; the process's peak RSS stays what it was
(the memory was in use at the peak anyway), it is only returned later.

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
#: Blocks below this come from the heap (glibc's own dynamic ceiling).
MMAP_THRESHOLD: Final = 32 * 1024 * 1024
#: Free heap kept mapped before trimming (a few 8 MiB images' buffers).
TRIM_THRESHOLD: Final = 32 * 1024 * 1024


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
    )
