"""The WebSocket json mode: every field survives; types and signs checked; bad text refused."""

from __future__ import annotations

import base64
import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imgbench import wire
from imgbench.errors import InvalidField, MalformedMessage, OversizedMessage, WireError

from helpers.messages import image_meta as meta


def test_json_round_trip_and_its_base64_cost() -> None:
    m = meta(mode="json")
    data = bytes(range(256)) * 300
    text = wire.encode_json_image(m, data)
    assert json.loads(text)["data"] == base64.b64encode(data).decode()
    got, payload = wire.decode_json_image(text, max_bytes=10**6, protocol="websocket", mode="json")
    assert (got, payload) == (m, data)
    # base64 inflates by 4/3: the cost the json mode is there to show.
    assert len(text) > len(data) * 4 / 3


@given(st.text(max_size=300))
def test_arbitrary_text_never_crashes_the_json_decoder(text: str) -> None:
    with contextlib.suppress(WireError):
        wire.decode_json_image(text, max_bytes=10**6, protocol="websocket", mode="json")


def _json_with(**change: object) -> dict[str, object]:
    return {**json.loads(wire.encode_json_image(meta(mode="json"), b"d")), **change}


@pytest.mark.parametrize(
    "obj",
    [
        [],
        {"run_id": "r"},
        _json_with(sequence=True),
        _json_with(data="@@not base64"),
        _json_with(sha256="zz"),
    ],
)
def test_malformed_json_messages(obj: object) -> None:
    with pytest.raises(MalformedMessage, match=r"^not a JSON image message: "):
        wire.decode_json_image(json.dumps(obj), max_bytes=10**6, protocol="websocket", mode="json")


def test_a_json_message_of_exactly_max_bytes_is_accepted_one_more_is_refused() -> None:
    text = wire.encode_json_image(meta(mode="json"), b"x" * 30)
    got, _ = wire.decode_json_image(text, max_bytes=len(text), protocol="websocket", mode="json")
    assert got == meta(mode="json", send_time_ns=got.send_time_ns)
    with pytest.raises(
        OversizedMessage,
        match=rf"^message of {len(text)} characters exceeds the limit of {len(text) - 1}$",
    ):
        wire.decode_json_image(text, max_bytes=len(text) - 1, protocol="websocket", mode="json")


def test_json_round_trip_keeps_every_field() -> None:
    m = meta(mode="json", sequence=3, total=9, send_time_ns=10**15, scheduled_time_ns=10**15 - 7,
             repetition=4, warmup=True, clock=wire.Clock.CLOCK_REALTIME, content_type="image/x",
             traceparent="")  # fmt: skip
    data = bytes(range(256))
    text = wire.encode_json_image(m, data)
    obj = json.loads(text)
    # What goes on the wire, field by field (independently of ImageMeta equality).
    assert obj == {
        "run_id": "run-1", "protocol": "websocket", "mode": "json", "sequence": 3, "total": 9,
        "send_time_ns": 10**15, "clock": int(wire.Clock.CLOCK_REALTIME),
        "content_type": "image/x", "sha256": wire.digest(b"data").hex(), "traceparent": "",
        "warmup": True, "scheduled_time_ns": 10**15 - 7, "repetition": 4,
        "data": base64.b64encode(data).decode(),
    }  # fmt: skip
    got, payload = wire.decode_json_image(text, max_bytes=10**6, protocol="websocket", mode="json")
    assert (got.scheduled_time_ns, got.repetition, got.warmup) == (10**15 - 7, 4, True)
    assert (got.sequence, got.total, got.clock) == (3, 9, wire.Clock.CLOCK_REALTIME)
    assert (got, payload) == (m, data)


@pytest.mark.parametrize(
    "change", [{"sequence": -1}, {"repetition": -1}, {"sequence": -1, "repetition": -1}]
)
def test_json_negative_sequence_or_repetition_is_refused(change: dict[str, int]) -> None:
    text = json.dumps(_json_with(**change))
    with pytest.raises(InvalidField, match=r"^sequence and repetition must not be negative$"):
        wire.decode_json_image(text, max_bytes=10**6, protocol="websocket", mode="json")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"warmup": 1}, "field 'warmup' must be bool"),
        ({"sequence": "3"}, "field 'sequence' must be int"),
        ({"total": True}, "field 'total' must be int"),
        ({"run_id": 5}, "field 'run_id' must be str"),
        ({"repetition": 1.0}, "field 'repetition' must be int"),
    ],
)
def test_json_fields_have_their_types(change: dict[str, object], message: str) -> None:
    text = json.dumps(_json_with(**change))
    with pytest.raises(MalformedMessage, match=rf"^not a JSON image message: {message}$"):
        wire.decode_json_image(text, max_bytes=10**6, protocol="websocket", mode="json")


def test_json_message_is_validated_like_a_binary_one() -> None:
    text = json.dumps(_json_with(total=0))
    with pytest.raises(InvalidField, match=r"^total must be 1..1000000, got 0$"):
        wire.decode_json_image(text, max_bytes=10**6, protocol="websocket", mode="json")
    text = wire.encode_json_image(meta(mode="json"), b"d")
    with pytest.raises(InvalidField, match=r"arrived on websocket/binary$"):
        wire.decode_json_image(text, max_bytes=10**6, protocol="websocket", mode="binary")
