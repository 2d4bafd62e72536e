"""``imgbench certs``: a throw-away CA and one certificate, written to a directory.

For deployments that want TLS without a PKI of their own: ``docker-compose.tls.yml``
runs it once into a volume that the receiver, the transmitter and Prometheus mount
(README "With Docker"). It writes, with :func:`imgbench.security.certs.write_files`:

* ``ca.pem``: the CA certificate (the CA's private key is never written: nothing
  else can be signed with it, so a leaked ``ca.pem`` lets nobody mint certificates);
* ``cert.pem``: one leaf, for server and client authentication, valid for
  ``--hosts`` plus ``localhost``, 127.0.0.1 and ::1;
* ``key.pem``: its private key, mode 0600.

Contract: existing files are never replaced silently. Without ``--force`` or
``--keep`` an existing file is refused (exit 2); ``--keep`` leaves a set that is
still usable (key belongs to the certificate, the certificate chains to ``ca.pem``,
covers every host and is valid for at least :data:`KEEP_MARGIN` more) and replaces
any other set (so ``docker compose up`` after ``down`` keeps the CA Prometheus and the
services already trust). Bad arguments exit 2 naming the flag; a directory that
cannot be written exits 1 (``imgbench.cli``'s ``OSError`` handling).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Final

from imgbench.errors import ConfigError

if TYPE_CHECKING:  # imported when the command runs, not with the parser
    from imgbench.security.tls import Tls

#: The files :func:`run` writes, in the order ca, cert, key (names of ``write_files``).
FILES: Final = ("ca.pem", "cert.pem", "key.pem")
#: ``--days`` bounds: a day at least; 397 days is the longest validity browsers accept
#: for a leaf (CA/Browser Forum), a sane ceiling for a throw-away certificate too.
MIN_DAYS: Final = 1
MAX_DAYS: Final = 397
DEFAULT_DAYS: Final = 30
#: ``--keep`` replaces a set that expires sooner than this.
KEEP_MARGIN: Final = timedelta(days=1)
_DNS_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``certs`` on the ``imgbench`` command's subparsers."""
    parser = sub.add_parser(
        "certs",
        help="write a throw-away CA and a certificate for the given hosts (TLS in deployments)",
        description="Writes ca.pem, cert.pem and key.pem (0600) to --out, for IMGBENCH_TLS_CA,"
        " IMGBENCH_TLS_CERT and IMGBENCH_TLS_KEY. The CA's key is not kept.",
    )
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="directory to write to (created if missing)")  # fmt: skip
    parser.add_argument(
        "--hosts", default="", metavar="NAMES",
        help="comma-separated DNS names or IP addresses the certificate is valid for, besides"
        " localhost, 127.0.0.1 and ::1 (e.g. the compose service names)",
    )  # fmt: skip
    parser.add_argument(
        "--days", type=int, default=DEFAULT_DAYS,
        help=f"validity of the CA and the certificate in days, {MIN_DAYS}-{MAX_DAYS}"
        f" [default {DEFAULT_DAYS}]",
    )  # fmt: skip
    parser.add_argument(
        "--owner", default=None, metavar="UID:GID",
        help="give the written files to this numeric user and group (a one-shot container"
        " running as root writing for services that run as another user)",
    )  # fmt: skip
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument("--force", action="store_true", help="replace existing files")
    existing.add_argument(
        "--keep", action="store_true",
        help=f"leave existing files if they are a usable set for --hosts (valid for at least"
        f" {KEEP_MARGIN.days} more day), replace them otherwise",
    )  # fmt: skip


def parse_hosts(raw: str) -> list[str]:
    """The ``--hosts`` list: DNS names (RFC 1123 labels) or IP addresses, no empty entry."""
    hosts = [part.strip() for part in raw.split(",")] if raw.strip() else []
    for host in hosts:
        try:
            ipaddress.ip_address(host)
            continue
        except ValueError:
            pass
        labels = host.split(".")
        if not host or len(host) > 253 or not all(_DNS_LABEL.fullmatch(x) for x in labels):
            raise ConfigError("--hosts", f"{host!r} is neither a DNS name nor an IP address")
    return hosts


def parse_owner(raw: str | None) -> tuple[int, int] | None:
    """``UID:GID`` as two numbers, or None when not given."""
    if raw is None:
        return None
    match = re.fullmatch(r"(\d{1,10}):(\d{1,10})", raw.strip())
    if match is None:
        raise ConfigError("--owner", f"{raw!r} is not UID:GID (two numbers)")
    return int(match[1]), int(match[2])


def run(args: argparse.Namespace) -> int:
    """Write (or keep) the files; one line on stdout says which. Returns the exit code."""
    from imgbench.security.certs import Authority, write_files

    hosts = parse_hosts(args.hosts)
    owner = parse_owner(args.owner)
    if not MIN_DAYS <= args.days <= MAX_DAYS:
        raise ConfigError("--days", f"{args.days} is not within {MIN_DAYS}-{MAX_DAYS}")
    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise ConfigError("--out", f"{out} exists and is not a directory")
    present = [name for name in FILES if (out / name).exists() or (out / name).is_symlink()]
    if present and args.keep:
        why_not = unusable(out, hosts)
        if why_not is None:
            usable = ", ".join(("localhost", *hosts))
            sys.stdout.write(f"kept {', '.join(FILES)} in {out}/ (usable for {usable})\n")
            return 0
        sys.stdout.write(f"replacing the files in {out}/: {why_not}\n")
    elif present and not args.force:
        raise ConfigError(
            "--out", f"{out}/ already holds {', '.join(present)}; pass --force to replace"
            " them or --keep to keep a usable set",
        )  # fmt: skip
    for name in present:
        (out / name).unlink()  # never write through a symlink an attacker left there
    files = write_files(out, hosts, authority=Authority(validity=timedelta(days=args.days)))
    if owner is not None:
        for path in (out / name for name in FILES):
            os.chown(path, *owner)
    names = ", ".join(("localhost", "127.0.0.1", "::1", *hosts))
    sys.stdout.write(
        f"wrote {files.ca}, {files.cert} and {files.key} (0600): valid {args.days} days"
        f" for {names}\n"
    )
    return 0


def unusable(directory: Path, hosts: Sequence[str]) -> str | None:
    """Why the files in ``directory`` cannot be kept for ``hosts``, or None if they can.

    Usable: the services' own start-up checks pass (PEM files, the key belongs to the
    certificate, within its dates), it stays valid for :data:`KEEP_MARGIN` more, and a
    TLS handshake in memory, client verifying against ``ca.pem``, succeeds for every
    host (chain, intermediates in ``cert.pem`` included, and subjectAltName).
    """
    from cryptography import x509

    from imgbench.security.tls import Tls, TlsFiles

    paths = [directory / name for name in FILES]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        return f"{', '.join(missing)} missing"
    try:
        tls = Tls(TlsFiles(cert=paths[1], key=paths[2], ca=paths[0]), server=True)
    except ConfigError as exc:
        return exc.reason
    cert = x509.load_pem_x509_certificates(paths[1].read_bytes())[0]
    if cert.not_valid_after_utc - datetime.now(UTC) < KEEP_MARGIN:
        return f"cert.pem expires on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
    for host in ("localhost", *hosts):
        refusal = _handshake(tls, host)
        if refusal is not None:
            return f"a client verifying against ca.pem refuses it for {host}: {refusal}"
    return None


def _handshake(tls: Tls, host: str) -> str | None:
    """A TLS handshake between the server and client contexts of ``tls``, in memory,
    the client expecting ``host``: None if it completes, else the reason."""
    import ssl

    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    client = tls.client_context().wrap_bio(c_in, c_out, server_hostname=host)
    server = tls.server_context().wrap_bio(s_in, s_out, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(8):  # TLS 1.3 completes in two flights each way
        for name, end in (("client", client), ("server", server)):
            if done[name]:
                continue
            try:
                end.do_handshake()
                done[name] = True
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLCertVerificationError as exc:
                return str(exc.verify_message)
            except ssl.SSLError as exc:
                return exc.reason or str(exc)
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            return None
    return "the handshake did not complete"
