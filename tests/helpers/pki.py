"""Certificates made at test time (imgbench.security.certs): a CA, a leaf it signs, and a
second, unrelated CA with its own leaf (for "wrong CA" cases)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from imgbench.security.certs import Authority, write_files
from imgbench.security.tls import TlsFiles

#: A token that passes the settings check (16+ header-safe characters).
TOKEN = "test-token-0123456789abcdef"


@dataclass(frozen=True)
class Pki:
    good: TlsFiles  # CA, and a leaf for localhost/127.0.0.1/::1 it signed
    other: TlsFiles  # another CA and its leaf: trusted by nobody here
    directory: Path


def make_pki(directory: Path) -> Pki:
    return Pki(
        good=write_files(directory / "good", authority=Authority("imgbench test CA")),
        other=write_files(directory / "other", authority=Authority("some other CA")),
        directory=directory,
    )
