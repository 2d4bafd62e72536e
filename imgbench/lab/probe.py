"""Small probe programs that run on the lab's hosts to measure the link itself.

Run as ``python -m imgbench.lab.probe COMMAND ...`` inside a host (see
:mod:`imgbench.lab.baseline`, which drives them). Servers print ``ready`` once
bound; every program prints its result as one JSON line on stdout. Times are
CLOCK_MONOTONIC seconds of the host the program runs on.

- ``echo --port P``: UDP echo server (forever).
- ``ping --host H --port P --count N --interval S --size B --timeout T``:
  sends N UDP probes S seconds apart, each B bytes; prints the round-trip
  times (seconds) of those echoed, the sequence numbers lost, and whether it
  ran at real-time priority (``echo`` and ``ping`` ask for it:
  :data:`INSTRUMENT_RT_PRIORITY`).
- ``sink --port P``: accepts one TCP connection, reads to end of file and prints
  ``(seconds since first byte, cumulative bytes)`` samples and the MSS.
- ``bulk --host H --port P --seconds D``: sends as fast as TCP allows for D
  seconds, then closes.
- ``count --port P --idle D``: receives numbered UDP datagrams until none came
  for D seconds (60 s before the first); prints the sequence numbers seen.
- ``blast --host H --port P --count N --interval S``: sends N numbered datagrams.
- ``clock``: prints this host's CLOCK_MONOTONIC and boot id.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import struct
import sys
import time
from pathlib import Path

_HEADER = struct.Struct("!Id")  # sequence number, send time (seconds)
_SAMPLE_EVERY_S = 0.01  # sink's time resolution for rate windows


#: Real-time priority (SCHED_RR) of the latency instruments, ``echo`` and ``ping``,
#: where allowed: below the link forwarder's (:data:`imgbench.lab.hosts.FORWARDER_RT_PRIORITY`),
#: above every time-shared program. A ping-style RTT is meant to show the link; on
#: a loaded machine a time-shared echo or ping waits for a CPU after each packet and
#: adds that wait (seen: 10 ms RTT probes with a p90 of 16-20 ms at load 5, 10.4-13 ms
#: with these priorities). Both sleep between packets, so they cannot hog a CPU.
INSTRUMENT_RT_PRIORITY = 5


def _prefer_instrument() -> bool:
    """Real-time priority for this latency instrument where allowed; False where refused."""
    try:
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(INSTRUMENT_RT_PRIORITY))
    except (OSError, AttributeError):
        return False
    return True


def _emit(result: object) -> None:
    print(json.dumps(result), flush=True)


def echo(port: int) -> None:
    _prefer_instrument()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("0.0.0.0", port))
        print("ready", flush=True)
        while True:
            data, peer = sock.recvfrom(65535)
            sock.sendto(data, peer)


def ping(host: str, port: int, count: int, interval: float, size: int, timeout: float) -> None:
    realtime = _prefer_instrument()
    rtts: dict[int, float] = {}
    padding = b"\0" * max(0, size - _HEADER.size)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect((host, port))
        start = time.monotonic()
        for seq in range(count):
            # Scheduled sends, so one slow echo does not shift the later probes.
            due = start + seq * interval
            while (now := time.monotonic()) < due:
                sock.settimeout(due - now)
                _receive(sock, rtts)
            sock.send(_HEADER.pack(seq, time.monotonic()) + padding)
        deadline = time.monotonic() + timeout
        while len(rtts) < count and (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            _receive(sock, rtts)
    _emit({"rtts": [rtts[s] for s in sorted(rtts)], "lost": sorted(set(range(count)) - set(rtts)),
           "realtime": realtime})  # fmt: skip


def _receive(sock: socket.socket, rtts: dict[int, float]) -> None:
    try:
        data = sock.recv(65535)
    except (TimeoutError, ConnectionRefusedError):
        return
    now = time.monotonic()
    seq, sent = _HEADER.unpack_from(data)
    rtts[seq] = now - sent


def sink(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("0.0.0.0", port))
        server.listen(1)
        print("ready", flush=True)
        conn, _ = server.accept()
        with conn:
            buf = bytearray(1 << 20)
            view = memoryview(buf)
            total = 0
            first: float | None = None
            samples: list[tuple[float, int]] = []
            last_sample = -1.0
            while True:
                n = conn.recv_into(view)
                now = time.monotonic()
                if n == 0:
                    break
                if first is None:
                    first = now
                total += n
                if now - last_sample >= _SAMPLE_EVERY_S:
                    samples.append((now - first, total))
                    last_sample = now
            if first is not None:
                samples.append((now - first, total))
            mss = conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG)
    _emit({"samples": samples, "bytes": total, "mss": mss})


def bulk(host: str, port: int, seconds: float) -> None:
    payload = b"\x5a" * (1 << 20)
    sent = 0
    with socket.create_connection((host, port), timeout=30) as sock:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            sent += sock.send(payload)
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(30)
        sock.recv(1)  # wait for the sink to close: all bytes delivered
    _emit({"sent": sent})


def count_datagrams(port: int, idle: float) -> None:
    seen: list[int] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sock.bind(("0.0.0.0", port))
        print("ready", flush=True)
        sock.settimeout(60.0)  # for the first datagram
        while True:
            try:
                data = sock.recv(65535)
            except TimeoutError:
                break
            sock.settimeout(idle)
            seen.append(_HEADER.unpack_from(data)[0])
    _emit({"seen": seen})


def blast(host: str, port: int, count: int, interval: float) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect((host, port))
        start = time.monotonic()
        for seq in range(count):
            if (wait := start + seq * interval - time.monotonic()) > 0:
                time.sleep(wait)
            sock.send(_HEADER.pack(seq, time.monotonic()))
    _emit({"sent": count})


def clock() -> None:
    boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    _emit({"monotonic": time.clock_gettime(time.CLOCK_MONOTONIC), "boot_id": boot_id})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m imgbench.lab.probe")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("echo")
    p.add_argument("--port", type=int, required=True)
    p = sub.add_parser("ping")
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--count", type=int, default=50)
    p.add_argument("--interval", type=float, default=0.02)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--timeout", type=float, default=2.0)
    p = sub.add_parser("sink")
    p.add_argument("--port", type=int, required=True)
    p = sub.add_parser("bulk")
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--seconds", type=float, default=3.0)
    p = sub.add_parser("count")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--idle", type=float, default=1.0)
    p = sub.add_parser("blast")
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--interval", type=float, default=0.001)
    sub.add_parser("clock")
    args = parser.parse_args(argv)
    if args.command == "echo":
        echo(args.port)
    elif args.command == "ping":
        ping(args.host, args.port, args.count, args.interval, args.size, args.timeout)
    elif args.command == "sink":
        sink(args.port)
    elif args.command == "bulk":
        bulk(args.host, args.port, args.seconds)
    elif args.command == "count":
        count_datagrams(args.port, args.idle)
    elif args.command == "blast":
        blast(args.host, args.port, args.count, args.interval)
    else:
        clock()
    return 0


if __name__ == "__main__":
    sys.exit(main())
