"""CPU time and memory of the current process (Linux /proc, with fallbacks)."""

from __future__ import annotations

import resource
from pathlib import Path


def cpu_seconds() -> float:
    """User + system CPU time of this process (all threads), in seconds."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


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
    return {"cpu_s": cpu_seconds(), "rss_bytes": rss_bytes(), "peak_rss_bytes": peak_rss_bytes()}


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
