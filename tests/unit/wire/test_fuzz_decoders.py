"""The decoder battery (issue 11): every decoder a peer can reach, at 100,000 inputs in total.

Each decoder gets generated input and must either return a valid value or refuse
it with a :class:`~imgbench.errors.WireError` (:class:`~imgbench.errors.ClockError`
for an impossible probe reply): never another exception. "Valid" is checked, not
assumed: an accepted message re-encodes to bytes that decode to the same value.

The bulk is a seeded generator (``helpers.fuzz``): structured messages with each
field valid or hostile, then byte-level mutations of those and of valid seeds
(flips, splices, protobuf/JSON fragments). Every test asserts how many inputs it
ran (its share of ``IMGBENCH_FUZZ_EXAMPLES``, default 100,000 across the battery
with the HTTP parser's share in tests/unit/runtime/test_http_fuzz.py; a share
goes through the receiver's whole sans-I/O step, past the decoders), that some
were accepted and that each expected refusal was reached. A few Hypothesis tests
add arbitrary JSON structure and chunk sequences at a small count.
"""

from __future__ import annotations

import base64
import contextlib
import json
import random
import time
from dataclasses import replace
from typing import Any

import pytest
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imgbench import wire
from imgbench.config.settings import ReceiverSettings
from imgbench.errors import WIRE_ERRORS, ClockError, MalformedMessage, UploadsBusy, WireError
from imgbench.measure.clock import Probe
from imgbench.v1.imgbench_pb2 import ClockExchange, ClockProbe, ClockProbeReply, ImageChunk
from imgbench.wire import names
from receiver.events import Stamp
from receiver.step import ReceiverStep

from helpers.fuzz import SEED, Mutator, Tally, check_budget, planned

LIMIT = 64 * 1024
REASONS = {cls.reason for cls in WIRE_ERRORS}
#: Where a message may arrive: (protocol, mode); probes of a chunked run come on unary.
# Push mode: the receiver decodes what a transmitter's push server sends it.
ARRIVALS = [(p, m) for p in wire.PROTOCOLS for m in (*wire.MODES[p], names.PUSH_MODE)]
MODES_OF_ARRIVAL = {p: (*wire.MODES[p], names.PUSH_MODE) for p in wire.PROTOCOLS}


def arrives(mode: str) -> str:
    """The mode a probe of a ``mode`` run arrives on."""
    return names.PROBE_MODE_OF.get(mode, mode)


NOW = time.monotonic_ns()
U32 = (0, 1, 2, 3, 7, 127, 128, 2**31 - 1, 2**31, 2**32 - 1, 1_000_000, 1_000_001)
I64 = (-(2**63), -1, 0, 1, NOW, NOW - 1, 2**62, 2**63 - 1)
HOSTILE_STRINGS = ("", ".", "..", "../up", "a/b", "a" * 65, "ü", "a\x00", " ", "x" * 101)
TRACEPARENT = "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"


def _i64(value: int) -> int:
    """``value`` clamped into protobuf's int64."""
    return max(-(2**63), min(2**63 - 1, value))


def _refused(tally: Tally, exc: WireError) -> None:
    assert exc.reason in REASONS, exc  # a bounded metric label
    assert str(exc), type(exc)  # a one-line reason for the Ack / close / status
    tally.refused(exc.reason)


class Generator:
    """Structured messages: each field valid most of the time, hostile otherwise."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def pick(self, valid: Any, hostile: tuple[Any, ...], p_valid: float = 0.9) -> Any:
        return valid if self.rng.random() < p_valid else self.rng.choice(hostile)

    def meta(self, protocol: str, mode: str, *, probe: bool | None = None) -> wire.ImageMeta:
        r = self.rng
        if probe is None:
            probe = r.random() < 0.15
        total = self.pick(r.randint(1, 50), U32)
        sequence = 0 if probe else self.pick(r.randrange(max(total, 1)), U32)
        send = self.pick(NOW + r.randrange(10**9), I64)
        info = None
        if probe:
            info = wire.ProbeInfo(
                id=r.randrange(2**64),
                revision=self.pick(names.PROBE_REVISION, (0, 1, 3, 2**32 - 1)),
                group=r.randrange(2**32),
                completed=tuple(
                    wire.Exchange(
                        r.randrange(2**64), r.randrange(2**32), *(r.choice(I64) for _ in range(4))
                    )
                    for _ in range(r.choice((0, 0, 1, 3)))
                ),
                boot_id=self.pick("0" * 36, ("", "b" * 64, "b" * 65)),
                realtime_ns=r.choice(I64),
            )
        return wire.ImageMeta(
            run_id=self.pick(r.choice(("r", "run-1", "A_b.c", "z" * 64)), HOSTILE_STRINGS),
            protocol=self.pick(protocol, ("", "websocket", "grpc", "http", "WEBSOCKET")),
            mode=self.pick(
                # A probe of a chunked run arrives on unary (names.PROBE_MODE_OF).
                r.choice([m for m in MODES_OF_ARRIVAL[protocol] if arrives(m) == mode] or [mode])
                if probe
                else mode,
                ("binary", "json", "unary", "stream", "chunked", "push", ""),
            ),
            sequence=sequence,
            total=total,
            send_time_ns=send,
            clock=self.pick(r.choice((1, 2)), (0, 3, 99, 2**31 - 1)),
            content_type=self.pick("image/png", HOSTILE_STRINGS),
            sha256=b""
            if probe and r.random() < 0.9
            else self.pick(r.randbytes(32), (b"", b"\x00" * 31, b"\x00" * 33)),
            traceparent=self.pick(r.choice(("", TRACEPARENT)), ("00-zz", "x" * 55)),
            warmup=False if probe else r.random() < 0.2,
            scheduled_time_ns=self.pick(r.choice((0, max(0, send - r.randrange(10**6)))), I64, 0.95)
            if not probe or r.random() < 0.05
            else 0,
            repetition=self.pick(r.randrange(4), U32),
            probe=info,
        )

    def image_bytes(self, protocol: str, mode: str) -> tuple[bytes, bool]:
        """ImageMessage bytes built field by field (protobuf's own types bound the values)."""
        meta = self.meta(protocol, mode)
        data = b"" if meta.probe is not None else self.rng.randbytes(self.rng.randrange(64))
        try:
            if meta.probe is not None:
                return _encode_probe_any(meta), True
            return wire.encode_image(meta, data), True
        except (ValueError, TypeError):  # out of protobuf's range: not representable
            return b"", False


def _encode_probe_any(meta: wire.ImageMeta) -> bytes:
    """A probe message even with fields a well-behaved sender never sets (sha256, warmup)."""
    probe = meta.probe
    assert probe is not None
    image = wire.ImageMessage.FromString(
        wire.encode_image(replace(meta, probe=None, sha256=meta.sha256), b"")
    )
    image.probe.CopyFrom(
        ClockProbe(
            id=probe.id, revision=probe.revision, group=probe.group, boot_id=probe.boot_id,
            realtime_ns=probe.realtime_ns,
            completed=[ClockExchange(id=x.id, group=x.group, t1_ns=x.t1, t2_ns=x.t2,
                                     t3_ns=x.t3, t4_ns=x.t4) for x in probe.completed],
        )
    )  # fmt: skip
    return image.SerializeToString()


def _roundtrip_image(meta: wire.ImageMeta, data: bytes, protocol: str, mode: str) -> None:
    """An accepted message is valid: encoding what was decoded gives back the same value."""
    raw = wire.encode_probe(meta) if meta.probe is not None else wire.encode_image(meta, data)
    again, data2 = wire.decode_image(raw, max_bytes=LIMIT + 64, protocol=protocol, mode=mode)
    assert again == meta and bytes(data2) == data


def _seeds() -> list[bytes]:
    gen = Generator(random.Random(SEED - 1))
    seeds = []
    for protocol, mode in ARRIVALS:
        meta = replace(gen.meta(protocol, mode, probe=False), run_id="seed")
        with contextlib.suppress(ValueError):
            seeds.append(wire.encode_image(meta, b"image-bytes"))
    return seeds


def test_protobuf_image_decoder_accepts_or_refuses() -> None:
    check_budget()
    rng = random.Random(SEED)
    gen, mutator = Generator(rng), Mutator(rng, _seeds(), ())
    tally = Tally()
    target = planned("protobuf_image")
    while tally.executed < target:
        protocol, mode = rng.choice(ARRIVALS)
        roll = rng.random()
        if roll < 0.45:
            raw, ok = gen.image_bytes(protocol, mode)
            if not ok:
                continue
        elif roll < 0.9:
            built, ok = gen.image_bytes(protocol, mode)
            raw = mutator.mutate(built if ok and rng.random() < 0.5 else None)
        else:
            raw = rng.randbytes(rng.randrange(128))
        limit = LIMIT if rng.random() < 0.95 else rng.randrange(len(raw) + 1)
        try:
            meta, data = wire.decode_image(raw, max_bytes=limit, protocol=protocol, mode=mode)
        except WireError as exc:
            _refused(tally, exc)
            continue
        assert meta.probe is None or len(data) == 0
        _roundtrip_image(meta, bytes(data), protocol, mode)
        tally.accepted()
    tally.check(
        "protobuf_image", reasons=("malformed", "oversized", "invalid_field"), min_accepted=0.05
    )


def test_ack_and_probe_reply_decoders_accept_or_refuse() -> None:
    """What a transmitter decodes: an Ack, its probe reply, and the probe that reply completes."""
    check_budget()
    rng = random.Random(SEED + 1)
    gen = Generator(rng)
    seeds = [
        wire.encode_ack(sequence=3, receive_time_ns=NOW, bytes_received=10, checksum_ok=True,
                        transmission_ns=5, warmup=False),
        wire.encode_ack(sequence=0, receive_time_ns=0, bytes_received=0, checksum_ok=False,
                        transmission_ns=0, warmup=False, error="invalid_field: run_id"),
        wire.encode_probe_reply(id=7, receive_time_ns=NOW, reply_time_ns=NOW + 10, clock=1,
                                boot_id="0" * 36),
    ]  # fmt: skip
    mutator = Mutator(rng, seeds, ())
    tally = Tally()
    target = planned("ack_probe_reply")
    while tally.executed < target:
        t1 = NOW + rng.randrange(10**6)
        roll = rng.random()
        if roll < 0.5:
            t2 = gen.pick(t1 + rng.randrange(-(10**6), 10**6), I64)
            reply = ClockProbeReply(
                id=rng.randrange(2**64), receive_time_ns=t2,
                reply_time_ns=gen.pick(_i64(t2 + rng.randrange(-10, 10**5)), I64),
                clock=rng.choice((0, 1, 2, 5)), boot_id=gen.pick("0" * 36, HOSTILE_STRINGS),
                revision=rng.choice((1, 2, 3)),
            )  # fmt: skip
            raw = wire.Ack(probe_reply=reply).SerializeToString()
            if rng.random() < 0.3:
                raw = mutator.mutate(raw)
        elif roll < 0.95:
            raw = mutator.mutate()
        else:
            raw = rng.randbytes(rng.randrange(64))
        try:
            ack = wire.decode_ack(raw)
        except WireError as exc:
            _refused(tally, exc)
            continue
        assert wire.decode_ack(ack.SerializeToString()) == ack
        probe_reply = wire.decode_probe_reply(ack)
        assert (probe_reply is None) == (not ack.HasField("probe_reply"))
        if probe_reply is None:
            tally.accepted()
            continue
        t4 = t1 + rng.choice((0, 1, 10**3, 10**6, 2 * 10**6))
        try:
            probe = Probe(t1, probe_reply.receive_time_ns, probe_reply.reply_time_ns, t4)
        except ClockError as exc:
            _refused(tally, exc)
            continue
        assert probe.lower_ns <= probe.upper_ns, probe
        tally.accepted()
    tally.check("ack_probe_reply", reasons=("malformed", "clock"), min_accepted=0.1)


#: JSON values that break naive decoders: huge and negative numbers, floats, wrong types.
HOSTILE_JSON: tuple[Any, ...] = (
    None, True, False, 0, -1, 2**40, 2**64, 2**70, -(2**70), 1.5, 1e308, float("nan"),
    float("inf"), "", "x" * 200, "\ud800", [], {}, [[[]]], {"a": {}}, "0" * 64, "zz",
)  # fmt: skip
JSON_TOKENS = (b"[" * 64, b"{", b"}", b'"', b"\\u0000", b"\\ud800", b"1e999", b"-0", b"NaN",
               b"Infinity", b"null", b"true", b"18446744073709551616", b",", b":", b"\xff",
               b'"sequence":', b'"data":"', b"==")  # fmt: skip
JSON_FIELDS = ("run_id", "protocol", "mode", "sequence", "total", "send_time_ns", "clock",
               "content_type", "sha256", "traceparent", "warmup", "scheduled_time_ns",
               "repetition", "data")  # fmt: skip


def _json_text(gen: Generator, protocol: str, mode: str) -> str:
    rng = gen.rng
    meta = gen.meta(protocol, mode, probe=False)
    obj = json.loads(wire.encode_json_image(meta, rng.randbytes(rng.randrange(48))))
    for _ in range(rng.choice((0, 0, 1, 1, 2, 3))):
        key = rng.choice(JSON_FIELDS)
        op = rng.random()
        if op < 0.7:
            obj[key] = rng.choice(HOSTILE_JSON)
        elif op < 0.85:
            obj.pop(key, None)
        else:
            obj["x" + str(rng.randrange(9))] = rng.choice(HOSTILE_JSON)
    if rng.random() < 0.03:
        return "[" * rng.choice((100, 5_000, 100_000)) + "]" * rng.randrange(3)
    if rng.random() < 0.05:
        return json.dumps(rng.choice((list(obj.values()), 1, "s", None)))
    return json.dumps(obj)


def test_json_image_decoder_accepts_or_refuses() -> None:
    check_budget()
    rng = random.Random(SEED + 2)
    gen = Generator(rng)
    seeds = [wire.encode_json_image(gen.meta("websocket", "json", probe=False), b"img").encode()]
    mutator = Mutator(rng, seeds, JSON_TOKENS)
    tally = Tally()
    target = planned("json_image")
    while tally.executed < target:
        # The decoder is only reached from the json endpoint; a wrong mode must be refused.
        protocol, mode = ("websocket", "json") if rng.random() < 0.9 else rng.choice(ARRIVALS)
        text = _json_text(gen, protocol, mode)
        if rng.random() < 0.35:
            # What websockets hands over is valid UTF-8: mutated bytes are decoded as such.
            text = mutator.mutate(text.encode()).decode("utf-8", "replace")
        limit = LIMIT if rng.random() < 0.97 else rng.randrange(len(text) + 1)
        try:
            meta, data = wire.decode_json_image(text, max_bytes=limit, protocol=protocol,
                                                mode=mode)  # fmt: skip
        except WireError as exc:
            _refused(tally, exc)
            continue
        again = wire.decode_json_image(
            wire.encode_json_image(meta, data), max_bytes=len(text) + LIMIT, protocol=protocol,
            mode=mode,
        )  # fmt: skip
        assert again == (meta, data)
        # The same image is representable on the binary transports (protobuf's types).
        binary = replace(meta, protocol="websocket", mode="binary")
        _roundtrip_image(binary, data, "websocket", "binary")
        tally.accepted()
    tally.check(
        "json_image", reasons=("malformed", "oversized", "invalid_field"), min_accepted=0.05
    )


MAX_CHUNK = 160
MAX_IMAGE = 256
UPLOAD_BUDGET = 200


def _chunk_sequence(gen: Generator, mutator: Mutator) -> tuple[list[bytes], bytes | None]:
    """Chunks of one upload, and the image they carry if the sequence was left intact."""
    rng = gen.rng
    meta = gen.meta("grpc", "chunked", probe=rng.random() < 0.03)
    data = rng.randbytes(rng.choice((0, 1, 17, rng.randrange(300))))
    try:
        chunks = wire.encode_chunks(meta, data, rng.choice((1, 7, 16, 64, 200)))
    except ValueError:
        return [rng.randbytes(rng.randrange(40))], None
    intact = rng.random() < 0.4
    if not intact:
        for _ in range(rng.randint(1, 3)):
            op = rng.randrange(8)
            at = rng.randrange(len(chunks))
            if op == 0:
                del chunks[at]
            elif op == 1:
                chunks.insert(at, chunks[rng.randrange(len(chunks))])
            elif op == 2:
                j = rng.randrange(len(chunks))
                chunks[at], chunks[j] = chunks[j], chunks[at]
            elif op == 3:  # another header, or the first one again, later in the stream
                chunks.insert(rng.randint(1, len(chunks)), chunks[0])
            elif op == 4:  # a header announcing another size than what follows
                with contextlib.suppress(DecodeError):  # chunks[0] already mutated
                    first = ImageChunk.FromString(chunks[0])
                    first.total_bytes = rng.choice(
                        (0, 1, max(0, len(data) - 1), len(data) + 1, 2**64 - 1)
                    )
                    chunks[0] = first.SerializeToString()
            elif op == 5:
                chunks[at] = mutator.mutate(chunks[at])
            elif op == 6:
                chunks.insert(at, rng.randbytes(rng.randrange(64)))
            else:
                del chunks[at:]
            if not chunks:
                break
    return chunks, data if intact else None


def test_chunk_reassembly_accepts_or_refuses() -> None:
    check_budget()
    rng = random.Random(SEED + 3)
    gen = Generator(rng)
    mutator = Mutator(rng, wire.encode_chunks(_seed_chunk_meta(), b"0123456789" * 5, 16), ())
    tally = Tally()
    target = planned("chunks")
    while tally.executed < target:
        chunks, intact = _chunk_sequence(gen, mutator)
        reserved: list[int] = []

        def reserve(size: int, reserved: list[int] = reserved) -> None:
            if size > UPLOAD_BUDGET:
                raise UploadsBusy(f"{size} bytes above the upload budget of {UPLOAD_BUDGET}")
            reserved.append(size)

        assembler = wire.ChunkAssembler(
            max_message_bytes=MAX_CHUNK, max_image_bytes=MAX_IMAGE, protocol="grpc",
            mode="chunked", reserve=reserve,
        )  # fmt: skip
        try:
            for raw in chunks:
                done = assembler.feed(raw)
                assert done == assembler.complete
                assert assembler.received <= assembler.reserved <= UPLOAD_BUDGET
            # The stream ended: an incomplete upload is refused, not half-accepted.
            meta, data = assembler.result()
        except WireError as exc:
            _refused(tally, exc)
            continue
        assert reserved == [len(data)], (reserved, len(data))
        if intact is not None and len(intact) <= UPLOAD_BUDGET:
            assert bytes(data) == intact
        _roundtrip_image(meta, bytes(data), "grpc", "unary" if meta.probe else "chunked")
        tally.accepted()
    tally.check(
        "chunks",
        reasons=("malformed", "oversized", "invalid_field", "uploads_busy"),
        min_accepted=0.05,
    )


def _seed_chunk_meta() -> wire.ImageMeta:
    return wire.ImageMeta(
        run_id="seed", protocol="grpc", mode="chunked", sequence=1, total=3, send_time_ns=NOW,
        clock=wire.Clock.CLOCK_MONOTONIC, content_type="image/png", sha256=wire.digest(b"x"),
    )  # fmt: skip


# Hypothesis for structure the seeded generator does not build: arbitrary JSON
# documents in every field, and arbitrary chunk lists. Small counts: its engine
# costs ~1 ms per example here, and these are not counted in the 100,000.
STRUCTURE = settings(
    max_examples=300,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                 max_size=4),
    max_leaves=6,
)  # fmt: skip
VALID_JSON = json.loads(wire.encode_json_image(replace(_seed_chunk_meta(), protocol="websocket",
                                                       mode="json"), b"img"))  # fmt: skip


@STRUCTURE
@given(st.dictionaries(st.sampled_from(JSON_FIELDS) | st.text(max_size=8), JSON_VALUES,
                       max_size=4), st.binary(max_size=32), st.booleans())  # fmt: skip
def test_json_decoder_with_arbitrary_json_fields(
    changes: dict[str, Any], data: bytes, replace_data: bool
) -> None:
    obj = {**VALID_JSON, **changes}
    if replace_data:
        obj["data"] = base64.b64encode(data).decode()
    try:
        meta, decoded = wire.decode_json_image(
            json.dumps(obj), max_bytes=LIMIT, protocol="websocket", mode="json"
        )
    except WireError as exc:
        assert exc.reason in REASONS
        return
    _roundtrip_image(replace(meta, mode="binary"), decoded, "websocket", "binary")


VALID_CHUNKS = wire.encode_chunks(_seed_chunk_meta(), b"0123456789" * 10, 16)


@STRUCTURE
@given(st.lists(st.one_of(st.sampled_from(VALID_CHUNKS), st.binary(max_size=64)), max_size=10))
def test_chunk_reassembly_with_arbitrary_chunk_lists(chunks: list[bytes]) -> None:
    assembler = wire.ChunkAssembler(
        max_message_bytes=LIMIT, max_image_bytes=4096, protocol="grpc", mode="chunked"
    )
    try:
        for raw in chunks:
            assembler.feed(raw)
        meta, data = assembler.result()
    except WireError as exc:
        assert exc.reason in REASONS
        return
    assert bytes(data) == b"0123456789" * 10 and meta.run_id == "seed"


def test_json_string_with_a_lone_surrogate_is_refused() -> None:
    """Found by the battery: accepted in JSON, but no protobuf string can carry it."""
    obj = {**VALID_JSON, "content_type": "\ud800"}
    with pytest.raises(MalformedMessage):
        wire.decode_json_image(json.dumps(obj), max_bytes=LIMIT, protocol="websocket",
                               mode="json")  # fmt: skip


def _step_message(rng: random.Random, gen: Generator, mutator: Mutator) -> tuple[bytes, str, str]:
    """A message for the step: images and probes of a few runs, so that records fill,
    complete and collect probe groups; a third of them mutated."""
    protocol, mode = rng.choice([a for a in ARRIVALS if a[1] != "json"])
    run_id = f"s{rng.randrange(6)}"
    now = time.monotonic_ns()
    if rng.random() < 0.3:
        offset = rng.choice((0, 0, 5_000, -(10**6), 10**9, rng.randrange(-(10**12), 10**12)))
        t1 = now - rng.randrange(10**6, 10**8)
        exchanges = []
        for i in range(rng.choice((0, 1, 4, 8))):
            a = t1 + i * 10**5
            b = a + offset + rng.randrange(10**5)
            c = b + rng.randrange(10**4)
            d = c - offset + rng.randrange(10**5)
            if rng.random() < 0.05:
                a, b, c, d = (rng.choice(I64) for _ in range(4))
            exchanges.append(wire.Exchange(i, rng.randrange(3), _i64(a), _i64(b), _i64(c), _i64(d)))
        meta = wire.ImageMeta(
            run_id=run_id, protocol=protocol, mode=mode, sequence=0, total=4,
            send_time_ns=t1, clock=wire.Clock.CLOCK_MONOTONIC, content_type="",
            sha256=b"", repetition=rng.randrange(2),
            probe=wire.ProbeInfo(id=rng.randrange(2**32), revision=names.PROBE_REVISION,
                                 group=rng.randrange(4), completed=tuple(exchanges),
                                 boot_id=rng.choice(("", "tx-boot", "rx-boot")),
                                 realtime_ns=rng.choice((0, time.time_ns()))),
        )  # fmt: skip
        raw = wire.encode_probe(meta)
    else:
        data = rng.randbytes(rng.randrange(1, 32))
        meta = replace(
            gen.meta(protocol, mode, probe=False), run_id=run_id, total=4,
            sequence=rng.randrange(4), send_time_ns=now - rng.randrange(10**7),
            scheduled_time_ns=0, sha256=wire.digest(data) if rng.random() < 0.95 else bytes(32),
            repetition=rng.randrange(2),
        )  # fmt: skip
        try:
            raw = wire.encode_image(meta, data)
        except ValueError:
            raw = rng.randbytes(16)
    if rng.random() < 0.3:
        raw = mutator.mutate(raw, max_ops=2)
    return raw, protocol, mode


def test_receiver_step_answers_every_message() -> None:
    """Past the decoders: every message through the receiver's whole sans-I/O step gets an
    Ack (a refusal with a bounded reason, a probe reply, or an image's ack)."""
    check_budget()
    rng = random.Random(SEED + 5)
    gen = Generator(rng)
    step = ReceiverStep(ReceiverSettings(max_runs=4), boot_id="rx-boot")
    mutator = Mutator(rng, _seeds(), ())
    tally = Tally()
    target = planned("receiver_step")
    while tally.executed < target:
        raw, protocol, mode = _step_message(rng, gen, mutator)
        outcome = step.step(raw, Stamp.now(), protocol=protocol, mode=mode)
        ack = wire.decode_ack(outcome.ack)
        if outcome.error is not None:
            assert outcome.error.reason in REASONS and ack.error.startswith(outcome.error.reason)
            tally.refused(outcome.error.reason)
            continue
        assert not ack.error and outcome.meta is not None
        if outcome.meta.probe is not None:
            assert wire.decode_probe_reply(ack) is not None
        tally.accepted()
    assert len(step.runs) <= 4
    tally.check(
        "receiver_step",
        reasons=("malformed", "invalid_field", "duplicate", "clock"),
        min_accepted=0.05,
    )
