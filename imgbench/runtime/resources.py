"""CPU time and memory of the current process (Linux /proc, with fallbacks).

The CPU figures of a run must measure the transport, not the observability
around it: a Prometheus scrape of ``/metrics`` costs milliseconds of CPU
(collecting and rendering every series, the socket work), once per scrape
interval. The HTTP API server (:mod:`imgbench.runtime.http`) runs on a thread of
its own and registers it here; :func:`api_cpu_seconds` is that thread's CPU
time (its thread CPU clock: user and system time, kernel socket work included)
and :func:`transport_cpu_seconds` the process CPU time minus it.
"""

from __future__ import annotations

import resource
import threading
import time
from pathlib import Path

_api_lock = threading.Lock()
#: Running API threads: thread id -> its CPU-time clock id.
_api_clocks: dict[int, int] = {}
#: CPU seconds of API threads that have ended.
_api_retired_s = 0.0


def cpu_seconds() -> float:
    """User + system CPU time of this process (all threads), in seconds."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def register_api_thread() -> None:
    """Count the calling thread's CPU time as HTTP API time from now on (call it first thing)."""
    ident = threading.get_ident()
    with _api_lock:
        _api_clocks[ident] = time.pthread_getcpuclockid(ident)


def retire_api_thread() -> None:
    """The calling API thread is about to end: keep its CPU time, drop its clock."""
    global _api_retired_s
    with _api_lock:
        if _api_clocks.pop(threading.get_ident(), None) is not None:
            _api_retired_s += time.thread_time()


def api_cpu_seconds() -> float:
    """CPU seconds spent by the HTTP API threads since the process started (monotonic)."""
    with _api_lock:
        return _api_retired_s + sum(time.clock_gettime(c) for c in _api_clocks.values())


def transport_cpu_seconds() -> float:
    """Process CPU seconds minus the HTTP API's: what the run figures use."""
    return cpu_seconds() - api_cpu_seconds()


def _status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_bytes() -> int:
    """Current resident set size in bytes (0 when unknown)."""
    kib = _status_kib("VmRSS")
    return kib * 1024 if kib is not None else 0


def peak_rss_bytes() -> int:
    """Peak resident set size since start or the last :func:`reset_peak_rss`, in bytes."""
    kib = _status_kib("VmHWM")
    if kib is not None:
        return kib * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (Linux ``clear_refs`` 5); False if unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def snapshot() -> dict[str, float]:
    """CPU and memory now. ``cpu_s`` excludes the HTTP API's CPU (see the module doc);
    ``process_cpu_s`` is the whole process and ``api_cpu_s`` the part excluded."""
    api = api_cpu_seconds()
    process = cpu_seconds()
    return {
        "cpu_s": process - api,
        "process_cpu_s": process,
        "api_cpu_s": api,
        "rss_bytes": rss_bytes(),
        "peak_rss_bytes": peak_rss_bytes(),
    }


_BOOT_ID: str | None = None


def boot_id() -> str:
    """This kernel's boot id (``/proc/sys/kernel/random/boot_id``), "" when unreadable.

    Sent with clock probes: two processes with the same boot id run on one
    kernel (they may still read different CLOCK_MONOTONICs in different time
    namespaces, which the probes detect). Read once: it cannot change.
    """
    global _BOOT_ID
    if _BOOT_ID is None:
        try:
            _BOOT_ID = Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:64]
        except OSError:
            _BOOT_ID = ""
    return _BOOT_ID
