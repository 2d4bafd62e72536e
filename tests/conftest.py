"""Fixtures shared by the test suite (helpers live in helpers/)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from helpers.pki import Pki, make_pki
from helpers.services import LiveReceiver, start_receiver


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """Two throw-away CAs with a leaf each, made once per session (a few ms)."""
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
async def live_receiver() -> AsyncIterator[LiveReceiver]:
    """A real receiver (WebSocket, gRPC, HTTP) on free loopback ports, spans in memory."""
    receiver = await start_receiver()
    try:
        yield receiver
    finally:
        await receiver.server.stop(grace=1.0)
