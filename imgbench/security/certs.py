"""A throw-away certificate authority and certificates, made with ``cryptography``.

For ``imgbench compare --tls`` when no certificate is given, and for the tests:
a CA (``BasicConstraints(ca=True)``, ``KeyUsage(key_cert_sign)``) and leaf
certificates it signs, valid for ``localhost``, 127.0.0.1 and ::1 (plus any
``hosts`` given), for server and client authentication alike (one leaf serves
mutual TLS too). Keys are ECDSA P-256: fast to generate (~1 ms) and what a
deployment would pick today. Nothing here is meant to outlive the run.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from imgbench.security.tls import TlsFiles

#: Names every generated leaf certificate is valid for.
LOCAL_NAMES: Final = ("localhost", "127.0.0.1", "::1")
VALIDITY: Final = timedelta(days=2)


@dataclass(frozen=True)
class Pem:
    """A certificate and its private key, PEM encoded."""

    cert: bytes
    key: bytes


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class Authority:
    """A throw-away CA; :meth:`issue` signs leaf certificates."""

    def __init__(
        self, common_name: str = "imgbench throw-away CA", *, validity: timedelta = VALIDITY
    ) -> None:
        """``validity``: how long from now the CA (and so every leaf) is valid."""
        self._key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        self._name = _name(common_name)
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(self._name)
            .issuer_name(self._name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + validity)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )

    @property
    def cert_pem(self) -> bytes:
        return self._cert.public_bytes(serialization.Encoding.PEM)

    def issue(self, hosts: Sequence[str] = (), common_name: str = "imgbench") -> Pem:
        """A leaf for ``hosts`` plus :data:`LOCAL_NAMES` (DNS names or IP addresses),
        valid until the CA expires (never beyond it)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        sans: list[x509.GeneralName] = []
        for host in dict.fromkeys((*LOCAL_NAMES, *hosts)):
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                sans.append(x509.DNSName(host))
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(self._name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(self._cert.not_valid_after_utc)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
            .sign(self._key, hashes.SHA256())
        )
        return Pem(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def write_files(
    directory: Path,
    hosts: Sequence[str] = (),
    *,
    authority: Authority | None = None,
    client_auth: bool = False,
) -> TlsFiles:
    """A CA and one leaf written to ``directory`` (``ca.pem``, ``cert.pem``,
    ``key.pem``; the key readable by the owner only); their :class:`TlsFiles`."""
    ca = authority if authority is not None else Authority()
    leaf = ca.issue(hosts)
    directory.mkdir(parents=True, exist_ok=True)
    paths = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    paths[0].write_bytes(ca.cert_pem)
    paths[1].write_bytes(leaf.cert)
    fd = os.open(paths[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    # O_CREAT's mode applies to a new file only: an existing key keeps its mode otherwise.
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(leaf.key)
    return TlsFiles(cert=paths[1], key=paths[2], ca=paths[0], client_auth=client_auth)
