"""The HTTP request parser's share of the decoder battery (issue 11; helpers/fuzz.py).

Generated requests (a grammar of request lines, headers and bodies with valid and
hostile parts, then byte-level mutations) go through the server's own parser,
:meth:`HttpServer._handle`, all in one event loop so that the per-input cost is
the parser's. Every request must be answered with a status, never an exception;
a well-formed one is routed (200/404/405) and never refused; a request is only
served when its framing is unambiguous (RFC 9112 section 6: Content-Length is
digits, duplicates agree, no Transfer-Encoding).
"""

from __future__ import annotations

import asyncio
import random
import re

import pytest

from imgbench.runtime.http import MAX_BODY, MAX_HEAD, HttpServer, Request, Response

from helpers.fuzz import SEED, Mutator, Tally, check_budget, planned

OK_STATUSES = {200, 400, 404, 405, 413, 501}
METHODS = ("GET", "POST")
HOSTILE_METHODS = ("", "get", "PUT", "G\x00T", "GET GET", "X" * 300, "CONNECT")
TARGETS = ("/runs/abc", "/runs/a.b-c", "/x", "/x?y=1&z", "/runs/abc?", "/nothing", "/runs/")
HOSTILE_TARGETS = ("", "*", "/runs/a/b", "/runs/%2e%2e", "http://h/x", "/\x00", "//x",
                   "/" + "a" * (MAX_HEAD + 10), "/runs/\xff", "/x#frag")  # fmt: skip
VERSIONS = ("HTTP/1.1", "HTTP/1.0")
HOSTILE_VERSIONS = ("", "HTTP/2", "http/1.1", "HTTP/1.1 extra", "HTTP/1.", "HTTP/0.9")
HOSTILE_LENGTHS = ("-1", "+3", "1_0", " ", "", "3, 3", "0x10", "99999999999", "\uff11", "3 3",
                   str(MAX_BODY + 1), "1e3", "\xb2")  # fmt: skip
HTTP_TOKENS = (b"\r\n", b"\n", b"\r", b":", b" ", b"\t", b"\r\n\r\n", b"Content-Length: ",
               b"Transfer-Encoding: chunked\r\n", b"HTTP/1.1", b"%00", b"-1", b"\x00", b"\xff",
               b"99999999999999999999")  # fmt: skip


async def _echo(request: Request) -> Response:
    return Response.json(
        {
            "path": request.path,
            "params": request.params,
            "body": len(request.body),
            "length": request.headers.get("content-length"),
        }
    )


SERVER = HttpServer(
    {("GET", "/runs/{run_id}"): _echo, ("POST", "/x"): _echo}, "127.0.0.1", 0, read_timeout=10.0
)


def _route(method: str, target: str) -> int:
    path = target.split("?", 1)[0]
    if re.fullmatch(r"/runs/[^/]+", path):
        return 200 if method == "GET" else 405
    if path == "/x":
        return 200 if method == "POST" else 405
    return 404


def _request(rng: random.Random) -> tuple[bytes, int | None]:
    """One request, and the status it must get when every part of it is well-formed."""
    clean = True

    def pick(valid: tuple[str, ...], hostile: tuple[str, ...]) -> str:
        nonlocal clean
        if rng.random() < 0.9:
            return rng.choice(valid)
        clean = False
        return rng.choice(hostile)

    method, target, version = (pick(METHODS, HOSTILE_METHODS), pick(TARGETS, HOSTILE_TARGETS),
                               pick(VERSIONS, HOSTILE_VERSIONS))  # fmt: skip
    body = rng.randbytes(rng.choice((0, 0, 1, 5, 64)))
    headers = [("Host", "x")]
    if body or rng.random() < 0.3:
        headers.append(("Content-Length", str(len(body))))
    extra = rng.random()
    if extra < 0.1:
        clean = False
        headers.append(("Content-Length", rng.choice(HOSTILE_LENGTHS)))
    elif extra < 0.15:
        headers.append(("Content-Length", str(len(body))))  # an agreeing duplicate is fine
    elif extra < 0.2:
        clean = False
        headers.append(("Content-Length", str(len(body) + rng.choice((-1, 1, 7)))))
    elif extra < 0.25:
        clean = False
        headers.append(("Transfer-Encoding", rng.choice(("chunked", "gzip, chunked", ""))))
    elif extra < 0.3:
        clean = False
        headers.append((rng.choice(("", "X Y", "X-\x00")), "v"))
    rng.shuffle(headers)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers)
    if rng.random() < 0.03:
        clean = False
        head = head.replace("\r\n", "\n")
    if rng.random() < 0.03:
        clean = False
        head += "obs-fold-without-colon\r\n"
    raw = f"{method} {target} {version}\r\n{head}\r\n".encode("latin-1", "replace") + body
    return raw, _route(method, target) if clean else None


def _framing_is_unambiguous(raw: bytes) -> bool:
    """What a request the server served must satisfy (RFC 9112 section 6)."""
    head = raw.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    lengths = set()
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "transfer-encoding":
            return False
        if name.strip().lower() == "content-length":
            if not re.fullmatch(r"[0-9]+", value.strip()):
                return False
            lengths.add(int(value.strip()))
    return len(lengths) <= 1


def test_http_request_parser_answers_every_request() -> None:
    check_budget()
    rng = random.Random(SEED + 4)
    seeds = [_request(random.Random(i))[0] for i in range(32)]
    mutator = Mutator(rng, seeds, HTTP_TOKENS)
    tally = Tally()
    target = planned("http_request")

    async def run() -> None:
        while tally.executed < target:
            roll = rng.random()
            expected: int | None = None
            if roll < 0.6:
                raw, expected = _request(rng)
            elif roll < 0.95:
                raw = mutator.mutate()
            else:
                raw = rng.randbytes(rng.randrange(256))
            reader = asyncio.StreamReader(limit=MAX_HEAD)
            reader.feed_data(raw)
            reader.feed_eof()
            response = await SERVER._handle(reader)
            assert response.status in OK_STATUSES, (raw[:200], response)
            if expected is not None:
                assert response.status == expected, (raw[:200], response)
            if response.status == 200:
                assert _framing_is_unambiguous(raw), (raw[:200], response)
                tally.accepted()
            else:
                tally.refused(str(response.status))

    asyncio.run(run())
    tally.check("http_request", reasons=("400", "404", "405", "413", "501"), min_accepted=0.08)


@pytest.mark.parametrize(
    ("head", "status"),
    [
        # Found by the battery: each was served (200) before, with a guessed body length.
        (b"Content-Length: +5", 400),
        (b"Content-Length: 0_5", 400),
        (b"Content-Length: 7\r\nContent-Length: 5", 400),
        (b"Content-Length: \r\nContent-Length: 5", 400),
        (b"Content-Length : 5", 400),
        (b"Transfer-Encoding: chunked\r\nContent-Length: 5", 501),
        (b"Content-Length: 5\r\nContent-Length: 5", 200),  # duplicates that agree
        (b"Content-Length: 5", 200),
        (b"Content-Length: " + b"9" * 5000, 400),  # beyond int()'s digit limit
    ],
)
async def test_http_request_framing_must_be_unambiguous(head: bytes, status: int) -> None:
    reader = asyncio.StreamReader(limit=MAX_HEAD)
    reader.feed_data(b"POST /x HTTP/1.1\r\nHost: x\r\n" + head + b"\r\n\r\nhello")
    reader.feed_eof()
    response = await SERVER._handle(reader)
    assert response.status == status, response
