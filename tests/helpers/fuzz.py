"""A small seeded mutation fuzzer for the decoder battery (issue 11, "the battery").

Why not Hypothesis for the bulk: its engine costs about 1 ms per example even for
``st.binary()`` on this machine, so 100,000 examples would take ~2 minutes before
the decoders run at all; a mutation of a valid seed with :class:`random.Random`
costs a few microseconds. Hypothesis still drives the structured tests (a few
hundred examples each, where its shrinking pays). atheris (coverage-guided) was
not used: it must own its process (``atheris.Fuzz()`` exits), its pure-Python
instrumentation slows every call, the decoders' hot part is protobuf's C code it
cannot see, and a run length in executions is not an exact input count.

Budget: ``IMGBENCH_FUZZ_EXAMPLES`` inputs in total across the battery (default
100,000), split between the decoders by :data:`SHARES`. Every test counts the
inputs it actually ran and asserts the count, and under ``IMGBENCH_REQUIRE_TOOLS=1``
(CI) a budget below 100,000 fails instead of silently shrinking the battery.
The seed is fixed (``IMGBENCH_FUZZ_SEED`` changes it), so a failure reproduces.
"""

from __future__ import annotations

import math
import os
import random
from collections import Counter
from collections.abc import Sequence
from typing import Final

import pytest

from helpers.external_tools import tools_required

#: The issue's floor for the whole battery.
FLOOR: Final = 100_000
BUDGET: Final = int(os.environ.get("IMGBENCH_FUZZ_EXAMPLES", str(FLOOR)))
SEED: Final = int(os.environ.get("IMGBENCH_FUZZ_SEED", "20261202"))

#: Share of the budget per decoder; weighted by what each one has to explore.
SHARES: Final = {
    "protobuf_image": 0.25,
    "ack_probe_reply": 0.12,
    "json_image": 0.23,
    "chunks": 0.15,
    "http_request": 0.15,
    # Beyond the decoders: the receiver's whole sans-I/O step (run table, duplicate
    # and clock checks, probe estimates), where a decoded value is used.
    "receiver_step": 0.10,
}


def planned(target: str) -> int:
    """How many inputs ``target`` runs: its share of the budget, rounded up."""
    return math.ceil(BUDGET * SHARES[target])


def check_budget() -> None:
    """Fail (CI) or skip-free warn: the battery must not shrink below :data:`FLOOR` in CI."""
    if BUDGET < FLOOR and tools_required():
        pytest.fail(
            f"IMGBENCH_FUZZ_EXAMPLES={BUDGET} is below the battery's floor of {FLOOR}"
            " and IMGBENCH_REQUIRE_TOOLS=1 (CI): the fuzz battery must not shrink"
        )


#: Bytes that tend to sit on boundaries: varint continuation, sign bits, maxima.
INTERESTING_BYTES: Final = (0x00, 0x01, 0x02, 0x07, 0x08, 0x0A, 0x12, 0x7F, 0x80, 0x81, 0xFF)
#: Protobuf-shaped fragments: overlong varints, huge lengths, stray tags of every wire type.
PROTO_TOKENS: Final = (
    b"\xff" * 9 + b"\x01",
    b"\x80" * 11,
    b"\xff\xff\xff\xff\x0f",
    b"\x7a\xff\xff\xff\xff\x0f",  # field 15 (data), length 2^32-1
    b"\x0a\x00",
    b"\x7b",  # field 15 as a group start
    b"\x7c",
    b"\x0d\x00\x00\x00\x00",
    b"\x09" + b"\x00" * 8,
    b"\x0f",  # wire type 7: invalid
    b"\x00",  # field number 0: invalid
)


class Mutator:
    """Seeded byte-level mutations of seed inputs, libFuzzer style (flip, insert, splice...).

    ``tokens`` is a dictionary of fragments that matter for the format (JSON
    punctuation, HTTP header names...), inserted or overwritten as a whole.
    """

    def __init__(self, rng: random.Random, seeds: Sequence[bytes], tokens: Sequence[bytes]):
        self.rng = rng
        self.seeds = list(seeds)
        self.tokens = list(tokens) + list(PROTO_TOKENS)
        self.ops = (
            self._flip,
            self._interesting,
            self._random_byte,
            self._insert,
            self._delete,
            self._duplicate,
            self._splice,
            self._truncate,
            self._token_insert,
            self._token_overwrite,
        )

    def seed(self) -> bytes:
        return self.rng.choice(self.seeds)

    def mutate(self, data: bytes | None = None, max_ops: int = 4) -> bytes:
        """``data`` (or a random seed) after 1..``max_ops`` random mutations."""
        buf = bytearray(self.seed() if data is None else data)
        for _ in range(self.rng.randint(1, max_ops)):
            self.rng.choice(self.ops)(buf)
        return bytes(buf)

    def _at(self, buf: bytearray) -> int:
        return self.rng.randrange(len(buf)) if buf else 0

    def _flip(self, buf: bytearray) -> None:
        if buf:
            buf[self._at(buf)] ^= 1 << self.rng.randrange(8)

    def _interesting(self, buf: bytearray) -> None:
        if buf:
            buf[self._at(buf)] = self.rng.choice(INTERESTING_BYTES)

    def _random_byte(self, buf: bytearray) -> None:
        if buf:
            buf[self._at(buf)] = self.rng.randrange(256)

    def _insert(self, buf: bytearray) -> None:
        at = self._at(buf)
        buf[at:at] = self.rng.randbytes(self.rng.randint(1, 16))

    def _delete(self, buf: bytearray) -> None:
        if buf:
            at = self._at(buf)
            del buf[at : at + self.rng.randint(1, 16)]

    def _duplicate(self, buf: bytearray) -> None:
        if buf:
            at = self._at(buf)
            piece = buf[at : at + self.rng.randint(1, 32)]
            to = self._at(buf)
            buf[to:to] = piece

    def _splice(self, buf: bytearray) -> None:
        other = self.seed()
        cut = self._at(buf)
        buf[cut:] = other[self.rng.randrange(len(other) + 1) :]

    def _truncate(self, buf: bytearray) -> None:
        del buf[self.rng.randrange(len(buf) + 1) :]

    def _token_insert(self, buf: bytearray) -> None:
        at = self._at(buf)
        buf[at:at] = self.rng.choice(self.tokens)

    def _token_overwrite(self, buf: bytearray) -> None:
        token = self.rng.choice(self.tokens)
        at = self._at(buf)
        buf[at : at + len(token)] = token


class Tally:
    """Counts the inputs a target ran, by outcome (``accepted`` or the refusal reason)."""

    def __init__(self) -> None:
        self.outcomes: Counter[str] = Counter()

    @property
    def executed(self) -> int:
        return sum(self.outcomes.values())

    def accepted(self) -> None:
        self.outcomes["accepted"] += 1

    def refused(self, reason: str) -> None:
        self.outcomes[reason] += 1

    def check(self, target: str, *, reasons: Sequence[str], min_accepted: float) -> None:
        """The planned count ran; the generators reached acceptance and every expected refusal.

        ``min_accepted`` is the least fraction of inputs a decoder must accept: a
        battery that only produces garbage refused at the first byte tests nothing.
        """
        assert self.executed == planned(target), (target, self.executed, planned(target))
        accepted = self.outcomes["accepted"]
        assert accepted >= min_accepted * self.executed, (target, dict(self.outcomes))
        # Each refusal path was taken at least 10 times at full size; a run scaled
        # below 5,000 inputs for this target is too short to require it.
        for reason in reasons if self.executed >= 5000 else ():
            assert self.outcomes[reason] >= 10, (
                target,
                reason,
                dict(self.outcomes),
            )
