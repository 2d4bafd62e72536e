"""ImageMeta and its protobuf form: every field, the probe's included, survives both ways."""

from __future__ import annotations

from imgbench import wire
from imgbench.wire import meta as wire_meta

from helpers.messages import image_meta


def test_to_message_and_back_keeps_every_field_and_leaves_data_out() -> None:
    probe = wire.ProbeInfo(
        id=9, revision=2, group=3, boot_id="boot", realtime_ns=77,
        completed=(wire.Exchange(8, 3, 1, 2, 3, 4), wire.Exchange(7, 2, 5, 6, 7, 8)),
    )  # fmt: skip
    for m in (
        image_meta(warmup=True, sequence=4, scheduled_time_ns=5, repetition=6, send_time_ns=9),
        image_meta(sha256=b"", sequence=0, probe=probe),
    ):
        msg = wire_meta.to_message(m)
        assert msg.data == b""
        assert wire_meta.from_message(msg) == m
    assert wire_meta.to_message(image_meta(probe=probe)).probe.completed[1].t4_ns == 8
    assert not wire_meta.to_message(image_meta()).HasField("probe")


def test_transmission_time_counts_from_the_scheduled_send_time() -> None:
    assert image_meta(send_time_ns=100, scheduled_time_ns=0).start_ns == 100
    assert image_meta(send_time_ns=100, scheduled_time_ns=40).start_ns == 40


def test_each_protocol_lists_its_modes_default_first() -> None:
    assert wire.PROTOCOLS == ("websocket", "grpc")
    assert wire.MODES == {"websocket": ("binary", "json"), "grpc": ("unary", "stream", "chunked")}
