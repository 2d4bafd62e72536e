"""Property-based fuzz of every decoder a client can reach (issue 11, "the battery").

Each decoder gets generated input, random and mutated from valid messages, and
must either accept it or refuse it with a :class:`~imgbench.errors.WireError`
(an HTTP 4xx for the request parser): never another exception. The number of
examples per decoder is ``IMGBENCH_FUZZ_EXAMPLES``; derandomized, so a CI failure
reproduces, with no example database and no deadline.

Cost, measured on the shared 2-core machine (load average ~8): the default, 2,500
examples per decoder (10,000 in total), took 113 s (chunk reassembly 44 s, JSON 26 s,
HTTP 22 s, protobuf 16 s); that is what fits ``.ci/run``'s budget today. The
issue's 100,000 in total (``IMGBENCH_FUZZ_EXAMPLES=25000``) takes about 25 minutes
here and is not yet reached in CI: the strategies need to get cheaper first.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imgbench import wire
from imgbench.errors import WireError
from imgbench.runtime.http import HttpServer, Request, Response

EXAMPLES = int(os.environ.get("IMGBENCH_FUZZ_EXAMPLES", "2500"))
settings.register_profile(
    "imgbench-fuzz",
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FUZZ = settings.get_profile("imgbench-fuzz")
LIMIT = 64 * 1024


def _meta(protocol: str = "websocket", mode: str = "binary") -> wire.ImageMeta:
    return wire.ImageMeta(
        run_id="fuzz", protocol=protocol, mode=mode, sequence=1, total=3,
        send_time_ns=time.monotonic_ns(), clock=wire.Clock.CLOCK_MONOTONIC,
        content_type="image/png", sha256=wire.digest(b"img"),
    )  # fmt: skip


VALID_BINARY = wire.encode_image(_meta(), b"img")
VALID_JSON = wire.encode_json_image(_meta(mode="json"), b"img")


@st.composite
def mutated(draw: st.DrawFn, valid: bytes) -> bytes:
    """``valid`` with a few bytes flipped, cut, or spliced with noise."""
    data = bytearray(valid)
    for _ in range(draw(st.integers(0, 6))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(["flip", "cut", "insert"]))
        if op == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "cut":
            del data[at : at + draw(st.integers(1, 8))]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
    return bytes(data)


@settings(FUZZ)
@given(st.one_of(st.binary(max_size=256), mutated(VALID_BINARY)))
def test_protobuf_decoder_accepts_or_refuses(raw: bytes) -> None:
    with contextlib.suppress(WireError):
        wire.decode_image(raw, max_bytes=LIMIT, protocol="websocket", mode="binary")


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                 max_size=4),
    max_leaves=12,
)  # fmt: skip
FIELDS = ("run_id", "protocol", "mode", "sequence", "total", "send_time_ns", "clock",
          "content_type", "sha256", "data", "warmup", "repetition",
          "scheduled_time_ns")  # fmt: skip


@st.composite
def json_messages(draw: st.DrawFn) -> str:
    """The valid JSON message with fields replaced by arbitrary JSON, dropped or added."""
    obj = json.loads(VALID_JSON)
    for _ in range(draw(st.integers(0, 4))):
        key = draw(st.sampled_from(FIELDS) | st.text(max_size=8))
        if draw(st.booleans()):
            obj[key] = draw(JSON_VALUES)
        else:
            obj.pop(key, None)
    if draw(st.booleans()):
        obj["data"] = base64.b64encode(draw(st.binary(max_size=32))).decode()
    return json.dumps(obj)


@settings(FUZZ)
@given(st.one_of(json_messages(), st.text(max_size=128),
                 mutated(VALID_JSON.encode()).map(lambda b: b.decode("utf-8", "replace"))),
       )  # fmt: skip
def test_json_decoder_accepts_or_refuses(text: str) -> None:
    with contextlib.suppress(WireError):
        wire.decode_json_image(text, max_bytes=LIMIT, protocol="websocket", mode="json")


VALID_CHUNKS = wire.encode_chunks(_meta("grpc", "chunked"), b"0123456789" * 10, 16)


@settings(FUZZ)
@given(st.lists(st.one_of(st.sampled_from(VALID_CHUNKS), st.binary(max_size=64),
                          st.sampled_from(VALID_CHUNKS).flatmap(mutated)),
                max_size=10))  # fmt: skip
def test_chunk_reassembly_accepts_or_refuses(chunks: list[bytes]) -> None:
    assembler = wire.ChunkAssembler(
        max_message_bytes=LIMIT, max_image_bytes=4096, protocol="grpc", mode="chunked"
    )
    try:
        for raw in chunks:
            assembler.feed(raw)
        if assembler.complete:
            meta, data = assembler.result()
            assert len(data) == 100 and meta.run_id == "fuzz"
    except WireError:
        pass


async def _ok(request: Request) -> Response:
    return Response.json({"path": request.path, "params": request.params})


SERVER = HttpServer({("GET", "/runs/{run_id}"): _ok, ("POST", "/x"): _ok}, "127.0.0.1", 0)
VALID_HTTP = b"GET /runs/abc HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"


def _parse(raw: bytes) -> Response:
    async def go() -> Response:
        reader = asyncio.StreamReader(limit=8 * 1024)
        reader.feed_data(raw)
        reader.feed_eof()
        return await SERVER._handle(reader)

    return asyncio.run(go())


@settings(FUZZ)
@given(st.one_of(st.binary(max_size=256), mutated(VALID_HTTP),
                 st.binary(max_size=64).map(lambda b: b"GET /" + b + b" HTTP/1.1\r\n\r\n")),
       )  # fmt: skip
def test_http_request_parser_answers_every_request(raw: bytes) -> None:
    response = _parse(raw)
    assert response.status in (200, 400, 404, 405, 413), response
