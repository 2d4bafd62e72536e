"""Run a program in a new time namespace whose clocks run OFFSET seconds ahead.

``python -m imgbench.lab.timens OFFSET -- PROGRAM [ARGS...]`` creates a time
namespace (``unshare(CLONE_NEWTIME)``), sets its CLOCK_MONOTONIC and
CLOCK_BOOTTIME offsets to OFFSET seconds (nanosecond resolution, may be
negative), enters it (``setns`` on ``/proc/self/ns/time_for_children``) and
executes PROGRAM, which therefore starts with the shifted clocks. CLOCK_REALTIME
is not per-namespace in Linux and stays shared.

Why not ``unshare --time --monotonic``: util-linux (2.38) takes whole seconds
only, and the lab's clock-offset has sub-second resolution, so that small
offsets (what an offset estimator must resolve) can be emulated too.
The kernel refuses an offset that would make a clock negative (ERANGE); the
lab checks that before (see :func:`imgbench.lab.hosts.preflight`).
"""

from __future__ import annotations

import ctypes
import math
import os
import sys

CLONE_NEWTIME = 0x00000080


def offsets_text(offset: float) -> str:
    """The ``/proc/self/timens_offsets`` lines for ``offset`` seconds on both clocks."""
    seconds = math.floor(offset)
    nanoseconds = round((offset - seconds) * 1e9)
    if nanoseconds >= 1_000_000_000:  # rounding carried into the next second
        seconds, nanoseconds = seconds + 1, 0
    return f"monotonic {seconds} {nanoseconds}\nboottime {seconds} {nanoseconds}\n"


def enter(offset: float) -> None:
    """Move this (single-threaded) process into a new time namespace ``offset`` s ahead."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWTIME) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"unshare(CLONE_NEWTIME): {os.strerror(err)}")
    with open("/proc/self/timens_offsets", "w") as f:
        f.write(offsets_text(offset))
    fd = os.open("/proc/self/ns/time_for_children", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWTIME) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns(time): {os.strerror(err)}")
    finally:
        os.close(fd)


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m imgbench.lab.timens OFFSET -- PROGRAM [ARGS...]", file=sys.stderr)
        return 2
    try:
        enter(float(argv[0]))
    except (OSError, ValueError) as exc:
        print(f"imgbench.lab.timens: {exc}", file=sys.stderr)
        return 125
    try:
        os.execvp(argv[2], argv[2:])
    except OSError as exc:
        print(f"imgbench.lab.timens: cannot run {argv[2]}: {exc.strerror}", file=sys.stderr)
        return 127


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
