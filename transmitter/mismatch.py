"""A transmitter and a receiver that disagree on TLS: told apart from a receiver not up yet.

Neither mismatch announces itself. A TLS listener given plain text closes the
connection without a byte (Python's ``ssl`` and grpc core alike: no alert), which
a plain-text client cannot tell from a refused or full port; a plain-text
WebSocket listener given a TLS ClientHello closes it too (websockets cannot parse
it), which the TLS client sees as a reset. Retrying cannot heal either, so on
such a failure the sender asks the port once more, the other way:
:func:`speaks_tls` (does a TLS handshake complete?) or :func:`answers_plain_http`
(does a plain HTTP request get a status line?), and stops at once with
:func:`plain_to_tls` / :func:`tls_to_plain` when the answer says which. A port
that is refused, full or silent answers neither, and the sender keeps retrying
until its connect deadline as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from typing import Final

#: Seconds one probe may take (it runs only after a failed attempt).
PROBE_TIMEOUT: Final = 2.0


def plain_to_tls(what: str) -> str:
    """The reason when ``what`` (e.g. "the gRPC receiver at host:port") speaks TLS."""
    return (
        f"{what} speaks TLS and this transmitter does not: set IMGBENCH_TLS (and"
        " IMGBENCH_TLS_CA to the CA that signed the receiver's certificate)"
    )


def tls_to_plain(what: str) -> str:
    """The reason when ``what`` answers in plain text a transmitter speaking TLS."""
    return (
        f"{what} does not speak TLS (it answered in plain text): turn TLS off here"
        " (IMGBENCH_TLS, IMGBENCH_TLS_CA, IMGBENCH_TLS_CERT) or serve TLS on the receiver"
        " (IMGBENCH_TLS_CERT, IMGBENCH_TLS_KEY)"
    )


async def speaks_tls(host: str, port: int, timeout: float = PROBE_TIMEOUT) -> bool:
    """Whether a TLS handshake with ``host:port`` completes within ``timeout`` seconds.

    Nothing is verified and nothing is sent after the handshake: the question is only
    whether the listener speaks TLS (a wrong certificate is reported by the real
    attempt, which verifies). False for a refused, closed, silent or plain port.
    """
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2", "http/1.1"])  # grpc core's listener wants h2
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=ctx, server_hostname=host), timeout
        )
    except (OSError, TimeoutError):  # ssl.SSLError is an OSError
        return False
    await _close(writer)
    return True


async def answers_plain_http(host: str, port: int, timeout: float = PROBE_TIMEOUT) -> bool:
    """Whether ``host:port`` answers a plain-text HTTP/1.1 request with a status line
    within ``timeout`` seconds (a WebSocket listener without TLS answers 426)."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError):
        return False
    try:
        writer.write(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        head = await asyncio.wait_for(reader.read(8), timeout)
    except (OSError, TimeoutError):
        return False
    finally:
        await _close(writer)
    return head.startswith(b"HTTP/1.")


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError, TimeoutError):
        await asyncio.wait_for(writer.wait_closed(), 1.0)
