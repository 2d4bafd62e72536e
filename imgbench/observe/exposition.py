"""The ``/metrics`` body: prometheus_client's exposition formats, rendered cheaply.

Why: a Prometheus scrape renders every series on the HTTP API thread while the
service's event loop measures images in the same process (README "Metrics
exposition"). prometheus_client 0.26's OpenMetrics encoder passes every sample
name through a per-character escaping loop (a function call per character, for
names that need no escaping) and re-validates every label name of every sample:
3.9 ms of CPU for the receiver's ~260 samples, over 80 % of it in that escaping.
Holding the GIL that long is what a scrape costs the measuring thread.

:func:`render` chooses the format exactly as prometheus_client does
(``choose_encoder`` on the ``Accept`` header) and, for the formats Prometheus and
this project use (OpenMetrics 1.0.0 and the text formats, with ``underscores`` or
``allow-utf-8`` escaping), writes the same bytes itself when every metric and
label name is in the legacy character set (where both escapings leave names
unchanged): names are written as they are, label values escaped only when they
contain a character to escape, and each series' label text is built once and
reused. Any other format, or any other name, is left to prometheus_client's
encoder, on the same collected families. ``tests/unit/observe/test_exposition.py``
compares both byte for byte.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Final

from prometheus_client import CollectorRegistry, Metric
from prometheus_client.exposition import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CONTENT_TYPE_PLAIN_1_0_0,
    choose_encoder,
)
from prometheus_client.openmetrics.exposition import (
    CONTENT_TYPE_LATEST as OPENMETRICS_1_0_0,
)
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

#: Content types (as ``choose_encoder`` returns them) of the text format rendered here.
TEXT_TYPES: Final = frozenset(
    {
        CONTENT_TYPE_PLAIN_0_0_4,
        f"{CONTENT_TYPE_PLAIN_1_0_0}; escaping=underscores",
        f"{CONTENT_TYPE_PLAIN_1_0_0}; escaping=allow-utf-8",
    }
)
#: Content types of the OpenMetrics 1.0.0 format rendered here.
OPENMETRICS_TYPES: Final = frozenset(
    {
        OPENMETRICS_1_0_0,
        f"{OPENMETRICS_1_0_0}; escaping=underscores",
        f"{OPENMETRICS_1_0_0}; escaping=allow-utf-8",
    }
)
#: A metric or label name that every escaping scheme handled here writes unchanged.
#: No ``:`` (prometheus_client's OpenMetrics encoder turns it into ``_`` in sample
#: lines only) and, for label names, no reserved ``__`` prefix (quoted under allow-utf-8).
_PLAIN_NAME: Final = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
#: Label text per series, keyed by the label items in their dict order. Series are
#: bounded (README "Metrics"); cleared if ever this large, as a bound of its own.
_LABEL_CACHE_MAX: Final = 20_000
_TEXT_RENAMES: Final = {"info": "gauge", "stateset": "gauge", "gaugehistogram": "histogram"}
_TEXT_SUFFIXES: Final = ("_created", "_gsum", "_gcount")
#: prometheus_client's float formatting (Go's: ``+Inf``, ``1.23e+06`` ...), typed.
_float_text: Final[Callable[[float], str]] = floatToGoString


class _Collected:
    """Already collected families, for prometheus_client's encoders (they call ``collect``)."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


class _NotPlain(Exception):
    """A name this module does not write itself: prometheus_client's encoder renders the body."""


#: Names seen to be plain: metric and sample names, label names (bounded: the code's names).
_PLAIN_METRICS: Final[set[str]] = set()
_PLAIN_LABELS: Final[set[str]] = set()
_LABELS: dict[tuple[tuple[str, str], ...], str] = {}


def _plain(name: str, *, label: bool = False) -> str:
    """``name`` itself if both escapings leave it unchanged; else raises :class:`_NotPlain`."""
    known = _PLAIN_LABELS if label else _PLAIN_METRICS
    if name not in known:
        if _PLAIN_NAME.fullmatch(name) is None or (label and name.startswith("__")):
            raise _NotPlain(name)
        known.add(name)
    return name


def _escape_value(value: str) -> str:
    """A label value (or OpenMetrics HELP text) escaped as prometheus_client does."""
    if "\\" in value or "\n" in value or '"' in value:
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return value


def _label_text(labels: dict[str, str]) -> str:
    """``{a="1",b="2"}`` (names sorted), or "" without labels."""
    if not labels:
        return ""
    key = tuple(labels.items())
    text = _LABELS.get(key)
    if text is None:
        inner = ",".join(f'{_plain(k, label=True)}="{_escape_value(v)}"' for k, v in sorted(key))
        text = "{" + inner + "}"
        if len(_LABELS) >= _LABEL_CACHE_MAX:
            _LABELS.clear()
        _LABELS[key] = text
    return text


def _value(value: float | None) -> str:
    return "" if value is None else _float_text(value)


def _exemplar(family: Metric, sample: Sample) -> str:
    """The `` # {labels} value [timestamp]`` suffix, with prometheus_client's validity rule."""
    exemplar = sample.exemplar
    assert exemplar is not None
    kind, name = family.type, sample.name
    if not (
        (kind == "counter" and name.endswith("_total"))
        or (kind == "gaugehistogram" and name.endswith("_bucket"))
        or (kind == "histogram" and (name.endswith("_bucket") or name == family.name))
    ):
        raise ValueError(
            f"Metric {family.name} has exemplars, but is not a histogram bucket or counter"
        )
    labels = ",".join(
        f'{_plain(k, label=True)}="{_escape_value(v)}"' for k, v in sorted(exemplar.labels.items())
    )
    text = f" # {{{labels}}} {_float_text(exemplar.value)}"
    return text if exemplar.timestamp is None else f"{text} {exemplar.timestamp}"


def _openmetrics(families: list[Metric]) -> Iterator[str]:
    """OpenMetrics 1.0.0 lines, as ``openmetrics.exposition.generate_latest``."""
    for family in families:
        name = _plain(family.name)
        yield f"# HELP {name} {_escape_value(family.documentation)}\n# TYPE {name} {family.type}\n"
        if family.unit:
            yield f"# UNIT {name} {family.unit}\n"
        for s in family.samples:
            if s.native_histogram is not None:
                raise _NotPlain(s.name)
            timestamp = "" if s.timestamp is None else f" {s.timestamp}"
            exemplar = "" if not s.exemplar else _exemplar(family, s)
            labels = _label_text(s.labels)
            yield f"{_plain(s.name)}{labels} {_value(s.value)}{timestamp}{exemplar}\n"
    yield "# EOF\n"


def _text(families: list[Metric]) -> Iterator[str]:
    """Prometheus text format 0.0.4 lines, as ``exposition.generate_latest``."""
    for family in families:
        name, kind = _plain(family.name), family.type
        if kind == "counter":
            name += "_total"
        elif kind == "info":
            name += "_info"
        elif kind == "unknown":
            kind = "untyped"
        kind = _TEXT_RENAMES.get(kind, kind)
        help_text = family.documentation.replace("\\", r"\\").replace("\n", r"\n")
        yield f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n"
        moved: dict[str, list[str]] = {}
        for s in family.samples:
            if s.native_histogram is not None:
                raise _NotPlain(s.name)
            line = f"{_plain(s.name)}{_label_text(s.labels)} {_value(s.value)}"
            if s.timestamp is not None:
                line += f" {int(float(s.timestamp) * 1000):d}"
            for suffix in _TEXT_SUFFIXES:
                if s.name == family.name + suffix:
                    # OpenMetrics-only samples: a gauge of their own, after the family.
                    moved.setdefault(suffix, []).append(line + "\n")
                    break
            else:
                yield line + "\n"
        for suffix, lines in sorted(moved.items()):
            yield f"# HELP {family.name}{suffix} {help_text}\n"
            yield f"# TYPE {family.name}{suffix} gauge\n"
            yield from lines


def render(registry: CollectorRegistry, accept: str) -> tuple[bytes, str]:
    """The body and content type answering a ``GET /metrics`` with this ``Accept`` header.

    The same bytes and content type as prometheus_client's ``choose_encoder(accept)``
    encoder gives for the registry (one collection of the registry either way).
    """
    encoder, content_type = choose_encoder(accept)
    lines: Callable[[list[Metric]], Iterator[str]] | None = None
    if content_type in OPENMETRICS_TYPES:
        lines = _openmetrics
    elif content_type in TEXT_TYPES:
        lines = _text
    families = list(registry.collect())
    if lines is not None:
        try:
            return "".join(lines(families)).encode("utf-8"), content_type
        except _NotPlain:
            pass
    return encoder(_Collected(families)), content_type
