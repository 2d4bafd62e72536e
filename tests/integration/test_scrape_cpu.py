"""Scraping does not disturb the CPU figures (issue 13, section 2).

A real receiver process, a real transmitter harness, and a real HTTP scraper
asking ``/metrics`` for OpenMetrics (as Prometheus does) at compose's scrape
interval, read from prometheus/prometheus.yml. Runs with and without scraping
alternate (A B B A B A A B A B B A) so drift cancels; the receiver's CPU per MB must agree
within 5 %, while the CPU the scrapes cost (excluded, reported apart) is shown
to be large enough that counting it would have broken that bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import statistics
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from imgbench.config.settings import TransmitterSettings
from imgbench.runtime.http import request
from transmitter.compare import local_receiver
from transmitter.image import load_image
from transmitter.senders import make_sender

from helpers.services import make_transmitter

ROOT = Path(__file__).resolve().parents[2]
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def compose_scrape_interval() -> float:
    """The global ``scrape_interval`` of the compose stack's Prometheus, in seconds."""
    text = (ROOT / "prometheus" / "prometheus.yml").read_text()
    match = re.search(r"^\s+scrape_interval:\s*(\d+(?:\.\d+)?)(ms|s)\s*$", text, re.M)
    assert match is not None, "no global scrape_interval in prometheus/prometheus.yml"
    value = float(match.group(1))
    return value / 1000 if match.group(2) == "ms" else value


@contextlib.asynccontextmanager
async def scraping(port: int, interval: float) -> AsyncIterator[list[int]]:
    """Scrape ``/metrics`` every ``interval`` s while the block runs; yields the body sizes."""
    sizes: list[int] = []
    stop = asyncio.Event()

    async def loop() -> None:
        while not stop.is_set():
            status, _, body = await request(
                "127.0.0.1", port, "GET", "/metrics", headers={"Accept": OPENMETRICS}
            )
            assert status == 200
            sizes.append(len(body))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)

    task = asyncio.create_task(loop())
    try:
        yield sizes
    finally:
        stop.set()
        await task


@pytest.mark.xfail(
    reason="open, not a pass: with prometheus_client's encoder the pooled ratio scraped / quiet"
    " was 1.050, 1.062 and 1.108 on an idle machine (2026-12-02, load < 1); with the cheaper"
    " render (imgbench/observe/exposition.py) it was 0.896, 1.174, 1.056 and 1.011 at load 7-12,"
    " noise larger than the 5 % bound; on an idle machine (15:38-15:41Z, load < 0.5) it passed"
    " (0.967, 0.973 and a third pass): kept xfail until more idle runs agree (README, 'What"
    " each figure means')",
    strict=False,
)
async def test_receiver_cpu_per_mb_with_compose_scraping_is_within_5_percent(
    tmp_path: Path,
) -> None:
    interval = compose_scrape_interval()
    base = TransmitterSettings().updated(
        images=10, delay=0.5, warmup=1, connect_timeout=10.0, image_timeout=30.0
    )
    image = load_image(None)
    async with local_receiver(base, tmp_path / "receiver.log") as ports:
        settings = base.updated(
            receiver_host="127.0.0.1",
            ws_port=ports["websocket"],
            grpc_port=ports["grpc"],
            http_port=ports["http"],
        )
        tx = make_transmitter(settings)
        figures: dict[bool, list[float]] = {False: [], True: []}
        api_cpu: list[float] = []
        scrapes = 0
        # One run first, discarded: the receiver's first run is slower (cold caches,
        # first-use allocations), 12.6 against ~8 ms/MB, and would land on one side.
        await tx.harness.run_protocol(make_sender("websocket", settings, None), image, "cold")
        # A B B A B A A B A B B A: order effects and linear drift cancel. Six runs a
        # side, pooled (their mean: every run sends the same bytes): one run's CPU per
        # MB varies by about 10 % even on an idle machine, too much for medians of 4.
        order = (False, True, True, False, True, False, False, True, False, True, True, False)
        for i, scraped in enumerate(order):
            sender = make_sender("websocket", settings, None)
            if scraped:
                async with scraping(ports["http"], interval) as sizes:
                    run = await tx.harness.run_protocol(sender, image, f"scrape-{i}")
                scrapes += len(sizes)
                api_cpu.append(run.costs["receiver_api_cpu_s"])
            else:
                run = await tx.harness.run_protocol(sender, image, f"quiet-{i}")
            figures[scraped].append(run.costs["receiver_cpu_ms_per_mb"])
        # A real scrape of that receiver: no *_created series.
        _, _, body = await request(
            "127.0.0.1", ports["http"], "GET", "/metrics", headers={"Accept": OPENMETRICS}
        )
    quiet, busy = statistics.fmean(figures[False]), statistics.fmean(figures[True])
    sent_mb = run.costs["bytes_sent"] / 1e6
    excluded_ms_per_mb = statistics.median(api_cpu) * 1000 / sent_mb
    print(
        f"receiver CPU per MB: quiet {figures[False]} busy {figures[True]} ms/MB;"
        f" ratio {busy / quiet:.3f}; {scrapes} scrapes at {interval} s;"
        f" excluded {excluded_ms_per_mb:.3f} ms/MB ({excluded_ms_per_mb / quiet:.1%})"
    )
    assert scrapes >= 16  # the scraper really ran during every scraped run
    assert abs(busy / quiet - 1) <= 0.05, (figures, api_cpu)
    # The test can fail: counted, the scrapes' CPU would exceed the 5 % bound.
    assert excluded_ms_per_mb > 0.05 * quiet, (excluded_ms_per_mb, quiet)
    names = [s.name for f in text_string_to_metric_families(body.decode()) for s in f.samples]
    assert any(n == "imgbench_images_received_total" for n in names)
    assert not [n for n in names if n.endswith("_created")]
