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

One malloc arena (``M_ARENA_MAX = 1``): glibc gives each thread that allocates
under contention an arena of its own (up to 8 per core), and the thresholds above
keep each arena's freed memory mapped: a thread arena's heap is at most 64 MiB,
below ``TRIM_THRESHOLD``, so it is never trimmed. grpc core reads HTTP/2 data on its
own threads, so each of them kept its own peak of received data resident and the
process held the sum of the threads' peaks, not the peak of the sum: 80-311 MiB in
3-5 such arenas, against about 2-3 x grpc's HTTP/2 window in the one heap (35-48 MiB
at a 16 MiB window, 126 MiB at 64 MiB) in the six-upload test (README "Bad input",
memory bound for chunked uploads). With one arena, freed grpc buffers are reused by
whichever thread allocates next. Receiver CPU per MiB uploaded was the same within
the noise (README).

Only glibc has ``mallopt``; elsewhere, and when the user set any
``MALLOC_*_`` tunable, this does nothing. The user's ``MALLOC_ARENA_MAX`` (or
``glibc.malloc.arena_max`` in ``GLIBC_TUNABLES``) wins over the arena limit alone.
It is process-wide state, so the entry points call :func:`keep_image_buffers` once at start-up
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
_M_ARENA_MAX: Final = -8
#: Blocks below this come from the heap (glibc's own dynamic ceiling).
MMAP_THRESHOLD: Final = 32 * 1024 * 1024
#: Free heap kept mapped at the top before trimming: twice the default 64 MiB
#: message limit, so that one image's freed buffers are not trimmed and faulted
#: in again for the next (at 32 MiB they were, for images of 32 MiB and more).
TRIM_THRESHOLD: Final = 128 * 1024 * 1024
#: Malloc arenas for the whole process: one, shared by grpc core's threads and the
#: interpreter, so that memory one thread freed is reused by the next (see above).
ARENA_MAX: Final = 1


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
    user_arenas = "MALLOC_ARENA_MAX" in env or "arena_max" in env.get("GLIBC_TUNABLES", "")
    return bool(
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
        and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
        and mallopt(_M_TOP_PAD, 0)
        # Above glibc's 32 MiB threshold ceiling only "no mmap at all" keeps blocks.
        and mallopt(_M_MMAP_MAX, 0)
        and (user_arenas or mallopt(_M_ARENA_MAX, ARENA_MAX))
    )
