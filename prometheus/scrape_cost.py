"""CPU a Prometheus scrape costs the scraped receiver, plain HTTP against TLS.

    python prometheus/scrape_cost.py [--scrapes 300] [--rounds 3]

Starts ``imgbench receiver`` twice per round on free loopback ports, once plain and
once with TLS (a certificate from ``imgbench certs``), alternating, and fetches
``/metrics`` ``--scrapes`` times from each, one connection per scrape as the API
server closes every connection (``Connection: close``), so each TLS scrape is a full
TLS 1.3 handshake, as Prometheus' are. The figure is the receiver process's CPU time
(user + system, ``/proc/<pid>/stat``) over the scrapes divided by their number: CPU
microseconds per scrape. It prints each round and the median per side, and the load
average; the scraping client's own CPU is not counted.
"""

from __future__ import annotations

import argparse
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far (s)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def free_ports(count: int) -> list[int]:
    socks = [socket.socket() for _ in range(count)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def measure(scrapes: int, certs: Path | None) -> float:
    """CPU microseconds per scrape of one receiver (plain, or TLS with ``certs``)."""
    ws, grpc, http = free_ports(3)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMGBENCH_", "RECEIVER_"))}
    env.update(RECEIVER_BIND="127.0.0.1", RECEIVER_PORT=str(ws), RECEIVER_GRPC_PORT=str(grpc),
               RECEIVER_HTTP_PORT=str(http), IMGBENCH_TELEMETRY="false")  # fmt: skip
    context = None
    if certs is not None:
        env["IMGBENCH_TLS_CERT"] = str(certs / "cert.pem")
        env["IMGBENCH_TLS_KEY"] = str(certs / "key.pem")
        env["IMGBENCH_TLS_CA"] = str(certs / "ca.pem")
        context = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    url = f"{'https' if certs else 'http'}://127.0.0.1:{http}/metrics"
    proc = subprocess.Popen([sys.executable, "-m", "imgbench.cli", "receiver"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(url, timeout=2, context=context).read()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.2)
        for _ in range(20):  # warm-up: code paths and allocator settled
            urllib.request.urlopen(url, timeout=5, context=context).read()
        time.sleep(0.5)
        before = cpu_seconds(proc.pid)
        for _ in range(scrapes):
            urllib.request.urlopen(url, timeout=5, context=context).read()
        return (cpu_seconds(proc.pid) - before) / scrapes * 1e6
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scrapes", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        certs = Path(tmp)
        subprocess.run([sys.executable, "-m", "imgbench.cli", "certs", "--out", tmp, "--force"],
                       check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        plain: list[float] = []
        tls: list[float] = []
        for r in range(args.rounds):
            order = [(plain, None), (tls, certs)]
            for side, where in order if r % 2 == 0 else order[::-1]:
                side.append(measure(args.scrapes, where))
            print(f"round {r + 1}: plain {plain[-1]:.0f} us, TLS {tls[-1]:.0f} us CPU per scrape")
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(f"median of {args.rounds} rounds x {args.scrapes} scrapes: plain"
          f" {statistics.median(plain):.0f} us, TLS {statistics.median(tls):.0f} us CPU per"
          f" scrape of the receiver; load average {load}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
