"""The senders' framing, without sockets: WebSocket fragments of one image message."""

from __future__ import annotations

import os

from imgbench import wire
from transmitter.senders import WS_FRAGMENT_BYTES, _fragments

from helpers.messages import image_meta


def test_websocket_fragments_cover_the_message_in_order() -> None:
    data = os.urandom(3 * WS_FRAGMENT_BYTES + 17)
    head, body = wire.encode_image_parts(image_meta(), data)
    fragments = _fragments(head, body)
    assert fragments[0] == head
    assert all(len(f) <= WS_FRAGMENT_BYTES for f in fragments[1:])
    assert b"".join(fragments) == head + data
