"""The link SPEC: what ``--link rtt=40ms,rate=100mbit,...`` means (pure, no I/O).

A SPEC is comma-separated ``key=value`` pairs; every key is optional and may
appear once. Spaces around keys and values are ignored; an empty SPEC is an
ideal link (no delay, no shaping, no loss, shared clock).

=================  =====================  ======================================
key                example                meaning (unit of the parsed field)
=================  =====================  ======================================
``rtt``            ``40ms``, ``0``        round-trip propagation delay; each
                                          direction gets half (seconds)
``rate``           ``100mbit``, ``1gbit`` bottleneck rate per direction, IP
                                          bytes counted; absent = unshaped
                                          (bit/s, SI prefixes as in tc:
                                          1 mbit = 10**6 bit)
``jitter``         ``2ms``                each packet's one-way delay varies
                                          uniformly within +-jitter, packet
                                          order kept (seconds)
``loss``           ``0.1%``               independent random loss per packet
                                          and per direction (fraction 0..1)
``clock-offset``   ``1000s``, ``-5s``     host B's CLOCK_MONOTONIC runs this
                                          far ahead of host A's (seconds)
``mtu``            ``9000``               MTU of both link ends, 576..65535
                                          (bytes; default 1500)
``queue``          ``1000``               bottleneck queue limit per direction,
                                          tail drop (packets; default 1000,
                                          netem's and txqueuelen's default)
``seed``           ``7``                  seed of the loss/jitter RNG
                                          (default 0: runs are repeatable)
=================  =====================  ======================================

Durations take ``s``, ``ms`` or ``us`` (a bare ``0`` is allowed). Rates take
``bit``, ``kbit``, ``mbit`` or ``gbit``; tc's ``kbps``/``mbps`` (which mean
*bytes* per second there) are refused as ambiguous. Loss needs ``%``.

Every refusal is a :class:`~imgbench.errors.ConfigError` whose setting is
``link.<key>`` (or ``link`` for the syntax) and whose reason says why.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields

from imgbench.errors import ConfigError

#: Bounds, each a documented limit rather than a guess at what the link can do.
MIN_MTU = 576  # the IPv4 minimum datagram every host must accept (RFC 791)
MAX_MTU = 65535  # the largest MTU a TUN device accepts
MAX_RTT_S = 10.0  # beyond this the measurement is about timeouts, not transports
MAX_JITTER_S = 10.0
MAX_CLOCK_OFFSET_S = 10.0**9  # ~31 years; the kernel's own limit is far above
MAX_RATE_BIT_S = 10.0**12  # 1 tbit/s: far above anything a userspace link forwards
MIN_RATE_BIT_S = 8_000.0  # 8 kbit/s: one 1500-byte packet per 1.5 s
MAX_QUEUE_PACKETS = 1_000_000
DEFAULT_MTU = 1500
DEFAULT_QUEUE_PACKETS = 1000

_DURATION_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6}
_RATE_UNITS = {"bit": 1.0, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9}
_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_QUANTITY = re.compile(rf"^({_NUMBER})\s*([a-zA-Z%]*)$")


@dataclass(frozen=True, slots=True)
class LinkSpec:
    """One emulated link, symmetric in both directions.

    Units: ``rtt``, ``jitter`` and ``clock_offset`` in seconds; ``rate`` in
    bit/s of IP packets (``None`` = unshaped); ``loss`` a fraction in [0, 1);
    ``mtu`` in bytes; ``queue`` in packets.
    """

    rtt: float = 0.0
    rate: float | None = None
    jitter: float = 0.0
    loss: float = 0.0
    clock_offset: float = 0.0
    mtu: int = DEFAULT_MTU
    queue: int = DEFAULT_QUEUE_PACKETS
    seed: int = 0

    def __post_init__(self) -> None:
        _check("rtt", self.rtt, 0.0, MAX_RTT_S, "s")
        _check("jitter", self.jitter, 0.0, MAX_JITTER_S, "s")
        _check("clock-offset", self.clock_offset, -MAX_CLOCK_OFFSET_S, MAX_CLOCK_OFFSET_S, "s")
        if self.rate is not None:
            _check("rate", self.rate, MIN_RATE_BIT_S, MAX_RATE_BIT_S, "bit/s")
        if not (0.0 <= self.loss < 1.0):
            raise ConfigError("link.loss", f"must be at least 0% and below 100%, got {self.loss:%}")
        if not (MIN_MTU <= self.mtu <= MAX_MTU):
            raise ConfigError("link.mtu", f"must be {MIN_MTU}..{MAX_MTU} bytes, got {self.mtu}")
        if not (1 <= self.queue <= MAX_QUEUE_PACKETS):
            raise ConfigError(
                "link.queue", f"must be 1..{MAX_QUEUE_PACKETS} packets, got {self.queue}"
            )
        if self.seed < 0:
            raise ConfigError("link.seed", f"must be a non-negative integer, got {self.seed}")

    @property
    def one_way_delay(self) -> float:
        """Base one-way delay in seconds (half the RTT)."""
        return self.rtt / 2

    @property
    def is_ideal(self) -> bool:
        """True when the link adds no delay, shaping, jitter or loss."""
        return self.rtt == 0 and self.rate is None and self.jitter == 0 and self.loss == 0

    def render(self) -> str:
        """The canonical SPEC text: parsing it gives this spec back (``loss`` up to
        the float rounding of its percentage)."""
        parts = []
        default = LinkSpec()
        for field in fields(self):
            value = getattr(self, field.name)
            if value == getattr(default, field.name):
                continue
            key = field.name.replace("_", "-")
            if field.name in ("rtt", "jitter", "clock_offset"):
                parts.append(f"{key}={value!r}s")
            elif field.name == "rate":
                parts.append(f"{key}={value!r}bit")
            elif field.name == "loss":
                parts.append(f"{key}={value * 100!r}%")
            else:
                parts.append(f"{key}={value}")
        return ",".join(parts)


def _check(key: str, value: float, low: float, high: float, unit: str) -> None:
    if not math.isfinite(value):
        raise ConfigError(f"link.{key}", f"must be a finite number, got {value}")
    if value < low:
        reason = "must not be negative" if low == 0 else f"must be at least {low:g} {unit}"
        raise ConfigError(f"link.{key}", f"{reason}, got {value:g} {unit}")
    if value > high:
        raise ConfigError(f"link.{key}", f"must be at most {high:g} {unit}, got {value:g} {unit}")


def _quantity(key: str, text: str) -> tuple[float, str]:
    match = _QUANTITY.match(text)
    if match is None:
        raise ConfigError(f"link.{key}", f"{text!r} is not a number with a unit")
    number = float(match.group(1))
    if not math.isfinite(number):
        raise ConfigError(f"link.{key}", f"{text!r} is not a finite number")
    return number, match.group(2).lower()


def parse_duration(key: str, text: str) -> float:
    """Seconds from ``40ms``, ``1.5s``, ``250us`` or a bare ``0``."""
    number, unit = _quantity(key, text)
    if unit == "" and number == 0:
        return 0.0
    if unit not in _DURATION_UNITS:
        raise ConfigError(f"link.{key}", f"{text!r} needs a duration unit: s, ms or us (e.g. 40ms)")
    return number * _DURATION_UNITS[unit]


def parse_rate(text: str) -> float:
    """bit/s from ``100mbit``, ``1gbit``, ``500kbit`` or ``64000bit``."""
    number, unit = _quantity("rate", text)
    if unit in ("bps", "kbps", "mbps", "gbps"):
        raise ConfigError(
            "link.rate",
            f"{text!r} is ambiguous (tc reads {unit} as bytes per second): "
            "write bit, kbit, mbit or gbit",
        )
    if unit not in _RATE_UNITS:
        raise ConfigError("link.rate", f"{text!r} needs a rate unit: bit, kbit, mbit or gbit")
    return number * _RATE_UNITS[unit]


def parse_percent(key: str, text: str) -> float:
    """A fraction from ``0.1%``."""
    number, unit = _quantity(key, text)
    if unit != "%":
        raise ConfigError(f"link.{key}", f"{text!r} needs a percent sign (e.g. 0.1%)")
    return number / 100


def _integer(key: str, text: str) -> int:
    if not re.fullmatch(r"[+-]?\d+", text):
        raise ConfigError(f"link.{key}", f"{text!r} is not a whole number")
    return int(text)


_KEYS = ("rtt", "rate", "jitter", "loss", "clock-offset", "mtu", "queue", "seed")


def parse_link(text: str) -> LinkSpec:
    """Parse a link SPEC (see the module docstring); raise ConfigError naming the key."""
    values: dict[str, object] = {}
    seen: set[str] = set()
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            if text.strip():
                raise ConfigError("link", f"empty item in {text!r} (stray comma?)")
            continue
        key, sep, value = item.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not sep or not key:
            raise ConfigError("link", f"{item!r} is not key=value")
        if key not in _KEYS:
            raise ConfigError(f"link.{key}", f"unknown key; known keys: {', '.join(_KEYS)}")
        if key in seen:
            raise ConfigError(f"link.{key}", "given more than once")
        seen.add(key)
        if not value:
            raise ConfigError(f"link.{key}", "has no value")
        if key in ("rtt", "jitter", "clock-offset"):
            values[key.replace("-", "_")] = parse_duration(key, value)
        elif key == "rate":
            values["rate"] = parse_rate(value)
        elif key == "loss":
            values["loss"] = parse_percent(key, value)
        else:
            values[key] = _integer(key, value)
    return LinkSpec(**values)  # type: ignore[arg-type]
