"""imgbench.observe.logs: one renderer for our logs and third-party ones."""

from __future__ import annotations

import io
import json

from imgbench.observe.logs import configure_logging


def test_third_party_logs_go_through_the_same_renderer() -> None:
    import logging

    stream = io.StringIO()
    configure_logging("json", "info", stream=stream)
    try:
        logging.getLogger("grpc._cython.cygrpc").warning("grpc says %s", "hello")
        logging.getLogger("websockets.server").error("websockets says hi")
    finally:
        configure_logging("console", "warning")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(x["logger"], x["event"], x["level"]) for x in lines] == [
        ("grpc._cython.cygrpc", "grpc says hello", "warning"),
        ("websockets.server", "websockets says hi", "error"),
    ]
    assert all("timestamp" in x for x in lines)
