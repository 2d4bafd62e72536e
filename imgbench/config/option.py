"""One setting's description (:class:`Option`), and the parsers and checks options use.

An :class:`Option` ties a settings field to its environment variable, its flag,
the parser for their text, its default (written here and nowhere else: the
settings dataclasses read it, :mod:`imgbench.config.settings`) and a check.
Parsers raise ``ValueError``; checks return the problem (or None). Both are
pure, apart from the file-system checks (:func:`writable_dir`,
:func:`existing_file`, :func:`readable_file`), which only look.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from imgbench.wire import MODES

MIB: Final = 1024 * 1024

Parser = Callable[[str], Any]
Check = Callable[[Any], "str | None"]


@dataclass(frozen=True)
class Option:
    """One setting: attribute name, environment variable, flag, parser, check."""

    name: str
    env: str
    flag: str
    parse: Parser
    default: Any
    help: str
    check: Check | None = None
    #: The flag may be given several times (values joined by commas, as in the env var).
    multiple: bool = False

    @property
    def label(self) -> str:
        return f"{self.env} ({self.flag})"

    @property
    def metavar(self) -> str:
        """What ``--help`` shows for the value: the allowed values, or a name for it."""
        choices = getattr(self.parse, "choices", None)
        if choices:
            return "{" + ",".join(choices) + "}"
        if self.parse is parse_bool:
            return "BOOL"
        return self.name.upper()


# Parsers --------------------------------------------------------------------------


def parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected one of 1/0, true/false, yes/no, on/off, got {text!r}")


def parse_size(text: str) -> int:
    """Bytes from ``123``, ``64KiB``, ``16MiB``, ``1GiB`` (binary units) or ``5MB``."""
    units = {
        "kib": 1024,
        "mib": MIB,
        "gib": 1024 * MIB,
        "kb": 1000,
        "mb": 10**6,
        "gb": 10**9,
        "b": 1,
    }
    raw = text.strip().lower()
    for unit in sorted(units, key=len, reverse=True):
        if raw.endswith(unit):
            return int(float(raw[: -len(unit)].strip()) * units[unit])
    return int(raw)


def parse_protocols(text: str) -> tuple[str, ...]:
    items = tuple(p.strip().lower() for p in text.split(",") if p.strip())
    if not items:
        raise ValueError("at least one protocol is needed")
    for item in items:
        if item not in MODES:
            raise ValueError(f"unknown protocol {item!r} (choose from {', '.join(MODES)})")
    if len(set(items)) != len(items):
        raise ValueError("a protocol is listed twice")
    return items


def parse_optional_path(text: str) -> Path | None:
    return Path(text).expanduser() if text.strip() else None


def parse_link_text(text: str) -> str:
    """A link SPEC, checked (:func:`imgbench.lab.spec.parse_link` raises a ConfigError
    naming ``link.<key>``) and kept as written; empty means no lab."""
    from imgbench.lab.spec import parse_link

    value = text.strip()
    if value:
        parse_link(value)
    return value


def choice(*values: str) -> Parser:
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in values:
            raise ValueError(f"choose from {', '.join(values)}, got {text!r}")
        return value

    parse.choices = values  # type: ignore[attr-defined]  # read by Option.metavar
    return parse


# Checks ---------------------------------------------------------------------------


def port(value: int) -> str | None:
    return None if 0 <= value <= 65535 else "must be a TCP port 0..65535 (0 = any free port)"


def between(low: float, high: float) -> Check:
    return lambda v: None if low <= v <= high else f"must be within {low}..{high}"


def grpc_frame_size(value: int) -> str | None:
    if value == 0 or 16384 <= value <= 16_777_215:
        return None
    return "must be 0 (grpcio's default, 16384) or 16384..16777215 bytes (HTTP/2's range)"


def writable_dir(value: Path) -> str | None:
    """A directory that exists and is writable, or can be created where it would go.

    Checked before a run starts, so a comparison never ends with nowhere to write.
    Nothing is created here.
    """
    path = value.expanduser().absolute()
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        return f"cannot write results under {path}: {probe} is not a directory"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"cannot write results under {path}: {probe} is not writable"
    return None


def existing_file(value: Path | None) -> str | None:
    """A readable, non-empty regular file (an image to send), or None."""
    if value is None:
        return None
    if value.is_dir():
        return f"{value} is a directory, not a file"
    if not value.exists():
        return f"file {value} does not exist"
    if not value.is_file():
        return f"{value} is not a regular file"
    if not os.access(value, os.R_OK):
        return f"file {value} is not readable"
    if value.stat().st_size == 0:
        return f"file {value} is empty: there is nothing to send"
    return None


def readable_file(value: Path | None) -> str | None:
    """A readable regular file (a certificate, key, CA bundle, token file), or None."""
    if value is None:
        return None
    if value.is_dir():
        return f"{value} is a directory, not a file"
    if not value.exists():
        return f"file {value} does not exist"
    if not os.access(value, os.R_OK):
        return f"file {value} is not readable"
    return None
