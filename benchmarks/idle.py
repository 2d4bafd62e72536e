"""Why a pause between images makes each image slower: ``python -m benchmarks.idle``.

The same two units of work are timed right after a pause of ``d`` seconds,
for several ``d``, interleaved in random order (so drift and other jobs on
the machine hit every pause alike):

- ``cpu``: SHA-256 of a 512 KiB buffer (what the receiver's checksum does per
  image): no network at all;
- ``tcp``: 512 KiB over an established loopback TCP connection to an echo
  process that answers one byte once it has read them all (a transport's
  minimum), timed on this side.

The pause is taken two ways:

- ``sleep``: ``time.sleep(d)``, the way the transmitter waits (the CPU may go
  idle, other processes run, caches and branch predictors are reused by them);
- ``spin``: a busy loop for ``d`` seconds: this process keeps its CPU, so no
  idle state, no wake-up, warmer caches; TCP still sees the same idle time.

Reading: if ``cpu`` slows after a slept pause but not after a spun one, the
cost is on the CPU side (wake-up from idle, cold caches, scheduling), not
TCP's. If ``tcp`` slows after a spun pause, TCP itself (restart after idle,
delayed ACK state) is involved. Each line: median time per delay and its
ratio to the back-to-back (``d = 0``) median.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import socket
import statistics
import sys
import time
from multiprocessing import Process

SIZE = 512 * 1024


def _echo(port_w: int) -> None:
    srv = socket.create_server(("127.0.0.1", 0))
    os.write(port_w, str(srv.getsockname()[1]).encode().ljust(8))
    conn, _ = srv.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = bytearray(SIZE)
    view = memoryview(buf)
    while True:
        got = 0
        while got < SIZE:
            n = conn.recv_into(view[got:])
            if n == 0:
                return
            got += n
        conn.sendall(b"k")


def _pause(how: str, seconds: float) -> None:
    if how == "sleep":
        time.sleep(seconds)
        return
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.idle")
    parser.add_argument("--delays", default="0,0.01,0.1,1", help="pauses, seconds")
    parser.add_argument("--rounds", type=int, default=12, help="samples per cell")
    args = parser.parse_args(argv)
    delays = [float(d) for d in args.delays.split(",")]
    r, w = os.pipe()
    echo = Process(target=_echo, args=(w,), daemon=True)
    echo.start()
    port = int(os.read(r, 8).decode())
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    payload = os.urandom(SIZE)
    for _ in range(20):  # warm both paths
        hashlib.sha256(payload).digest()
        sock.sendall(payload)
        sock.recv(1)
    cells = [(how, d) for how in ("sleep", "spin") for d in delays]
    times: dict[tuple[str, str, float], list[float]] = {}
    rng = random.Random(1)
    for _ in range(args.rounds):
        rng.shuffle(cells)
        for how, d in cells:
            _pause(how, d)
            t0 = time.perf_counter()
            hashlib.sha256(payload).digest()
            t1 = time.perf_counter()
            times.setdefault(("cpu", how, d), []).append(t1 - t0)
            _pause(how, d)
            t0 = time.perf_counter()
            sock.sendall(payload)
            sock.recv(1)
            t1 = time.perf_counter()
            times.setdefault(("tcp", how, d), []).append(t1 - t0)
    sock.close()
    echo.join(timeout=5)
    print(f"median of {args.rounds} per cell, ms (ratio to the same pause kind at d=0);"
          f" 512 KiB; cpuidle driver: {_cpuidle()}")  # fmt: skip
    for work in ("cpu", "tcp"):
        for how in ("sleep", "spin"):
            base = statistics.median(times[(work, how, delays[0])])
            cells_text = "  ".join(
                f"d={d:g}s {statistics.median(times[(work, how, d)]) * 1e3:6.3f}"
                f" ({statistics.median(times[(work, how, d)]) / base:4.2f}x)"
                for d in delays
            )
            print(f"{work:3} after {how:5}: {cells_text}")
    return 0


def _cpuidle() -> str:
    try:
        with open("/sys/devices/system/cpu/cpuidle/current_driver") as f:
            return f.read().strip()
    except OSError:
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
