"""TLS for every listener and client of a process, from one certificate, key and CA.

:class:`Tls` reads the three PEM files once, checks them (a certificate and a
private key that parse and belong together, a CA bundle that parses, a
certificate not expired) and hands out what each library takes:

* ``ssl.SSLContext`` for websockets (server and client) and the HTTP APIs,
  with ``minimum_version = TLSv1_3``;
* grpcio credentials (``ssl_server_credentials`` / ``ssl_channel_credentials``)
  made from the same bytes. grpcio's Python API takes no TLS version: its core
  negotiates TLS 1.3 when the peer offers it and still accepts TLS 1.2
  (its defaults, 1.2 minimum and 1.3 maximum; grpc/grpc#37305). Our clients
  always negotiate 1.3; a TLS 1.2-only client can still complete a handshake
  with the gRPC listener (``tests/integration/test_tls.py`` measures both).

Verification: a client checks the server's certificate against
``IMGBENCH_TLS_CA``, or the system store without one (for grpcio too: the
store's bundle is handed to it, not grpcio's own bundled roots). Mutual TLS
(``IMGBENCH_TLS_CLIENT_AUTH``): servers require a client certificate signed by
``IMGBENCH_TLS_CA``, and clients present ``IMGBENCH_TLS_CERT``.
"""

from __future__ import annotations

import functools
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Protocol

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from imgbench.errors import ConfigError

#: The settings' user-facing names (``ENV (--flag)``), as in imgbench.config.
CERT: Final = "IMGBENCH_TLS_CERT (--tls-cert)"
KEY: Final = "IMGBENCH_TLS_KEY (--tls-key)"
CA: Final = "IMGBENCH_TLS_CA (--tls-ca)"
CLIENT_AUTH: Final = "IMGBENCH_TLS_CLIENT_AUTH (--tls-client-auth)"
TLS: Final = "IMGBENCH_TLS (--tls)"
#: What every ssl.SSLContext of imgbench requires.
MINIMUM_VERSION: Final = ssl.TLSVersion.TLSv1_3
#: Where the system's CA bundle usually is when OpenSSL names none (Debian, Alpine).
SYSTEM_BUNDLES: Final = ("/etc/ssl/certs/ca-certificates.crt", "/etc/ssl/cert.pem")


@dataclass(frozen=True)
class TlsFiles:
    """The TLS settings of one process (paths; None = not given)."""

    cert: Path | None = None
    key: Path | None = None
    ca: Path | None = None
    client_auth: bool = False


class Tls:
    """The checked TLS material of one process; contexts and credentials are built once.

    ``server``: this process listens with TLS, so it needs its certificate and
    key (:class:`ConfigError` naming the missing one otherwise). A client-only
    process (a transmitter uploading to a receiver) may have neither.
    """

    def __init__(self, files: TlsFiles, *, server: bool) -> None:
        self.files = files
        if files.client_auth and files.ca is None:
            raise ConfigError(CA, f"is required by {CLIENT_AUTH} (the CA client certificates"
                              " are checked against)")  # fmt: skip
        needs_identity = server or files.client_auth
        if needs_identity and files.cert is None:
            raise ConfigError(CERT, "is required with TLS on a listening service"
                              if server else f"is required by {CLIENT_AUTH}")  # fmt: skip
        if files.cert is not None and files.key is None:
            raise ConfigError(KEY, f"is required with {CERT}")
        if files.key is not None and files.cert is None:
            raise ConfigError(CERT, f"is required with {KEY}")
        self.cert_pem = _read(files.cert, CERT) if files.cert is not None else None
        self.key_pem = _read(files.key, KEY) if files.key is not None else None
        self.ca_pem = _read(files.ca, CA) if files.ca is not None else None
        if self.cert_pem is not None and self.key_pem is not None:
            _check_pair(self.cert_pem, self.key_pem)
        if self.ca_pem is not None:
            _check_bundle(self.ca_pem)
        # Built now, so that anything OpenSSL objects to also stops the start-up.
        self._server = self._server_context() if self.cert_pem is not None else None
        self._client = self._client_context()

    # -- ssl.SSLContext ------------------------------------------------------

    def server_context(self) -> ssl.SSLContext:
        """For websockets' ``serve`` and the HTTP APIs (TLS 1.3 minimum)."""
        if self._server is None:
            raise ConfigError(CERT, "is required with TLS on a listening service")
        return self._server

    def client_context(self) -> ssl.SSLContext:
        """For websockets' ``connect`` and the HTTP client: verifies the server
        (host name and chain against the CA, or the system store)."""
        return self._client

    def _server_context(self) -> ssl.SSLContext:
        assert self.files.cert is not None and self.files.key is not None
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = MINIMUM_VERSION
        _load_chain(ctx, self.files.cert, self.files.key)
        if self.files.client_auth:
            ctx.verify_mode = ssl.CERT_REQUIRED
            _load_ca(ctx, self.ca_pem)
        return ctx

    def _client_context(self) -> ssl.SSLContext:
        if self.ca_pem is None:
            ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)  # the system store
        else:
            # Only this CA: a certificate the system store trusts is not the receiver's.
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies chain and host name
            _load_ca(ctx, self.ca_pem)
        ctx.minimum_version = MINIMUM_VERSION
        if self.files.client_auth:
            assert self.files.cert is not None and self.files.key is not None
            _load_chain(ctx, self.files.cert, self.files.key)
        return ctx

    # -- grpcio --------------------------------------------------------------

    def grpc_server_credentials(self) -> grpc.ServerCredentials:
        """``add_secure_port`` credentials: the same certificate and key."""
        if self.cert_pem is None or self.key_pem is None:
            raise ConfigError(CERT, "is required with TLS on a listening service")
        return grpc.ssl_server_credentials(
            [(self.key_pem, self.cert_pem)],
            root_certificates=self.ca_pem if self.files.client_auth else None,
            require_client_auth=self.files.client_auth,
        )

    def grpc_channel_credentials(self) -> grpc.ChannelCredentials:
        """``secure_channel`` credentials: the CA (or the system store), and with
        mutual TLS the client certificate."""
        roots = self.ca_pem if self.ca_pem is not None else system_bundle()
        if self.files.client_auth:
            return grpc.ssl_channel_credentials(roots, self.key_pem, self.cert_pem)
        return grpc.ssl_channel_credentials(roots)


class TlsSettings(Protocol):
    """The settings fields TLS is built from (ReceiverSettings, TransmitterSettings)."""

    @property
    def tls_on(self) -> bool: ...
    @property
    def tls_cert(self) -> Path | None: ...
    @property
    def tls_key(self) -> Path | None: ...
    @property
    def tls_ca(self) -> Path | None: ...
    @property
    def tls_client_auth(self) -> bool: ...


def tls_of(settings: TlsSettings, *, server: bool) -> Tls | None:
    """The process's :class:`Tls` for ``settings`` (read and checked once per set of
    files), or None when TLS is off. ``server``: this process listens."""
    if not settings.tls_on:
        return None
    files = TlsFiles(settings.tls_cert, settings.tls_key, settings.tls_ca, settings.tls_client_auth)
    return _tls(files, server)


@functools.cache
def _tls(files: TlsFiles, server: bool) -> Tls:
    return Tls(files, server=server)


@functools.cache
def system_bundle() -> bytes | None:
    """The system store's CA bundle (what ``ssl.create_default_context`` trusts), so
    grpcio verifies against the same roots as websockets; None if there is none
    (grpcio then uses the roots it bundles)."""
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile, *SYSTEM_BUNDLES):
        if candidate and Path(candidate).is_file():
            try:
                return Path(candidate).read_bytes()
            except OSError:
                continue
    return None


def _read(path: Path, label: str) -> bytes:
    if path.is_dir():
        raise ConfigError(label, f"{path} is a directory, not a PEM file")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(label, f"file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(label, f"cannot read {path}: {exc.strerror or exc}") from None
    if b"-----BEGIN " not in data:
        raise ConfigError(label, f"{path} is not a PEM file (no -----BEGIN line)")
    return data


def _check_pair(cert_pem: bytes, key_pem: bytes) -> None:
    try:
        cert = x509.load_pem_x509_certificates(cert_pem)[0]
    except ValueError as exc:
        raise ConfigError(CERT, f"not a PEM certificate: {exc}") from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:
        raise ConfigError(KEY, "the key is encrypted; give an unencrypted PEM key") from None
    except Exception as exc:  # ValueError, or UnsupportedAlgorithm for an unknown key type
        raise ConfigError(KEY, f"not a PEM private key: {exc}") from None
    raw = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if cert.public_key().public_bytes(*raw) != key.public_key().public_bytes(*raw):
        raise ConfigError(KEY, f"does not belong to the certificate of {CERT}")
    now = datetime.now(UTC)
    if cert.not_valid_after_utc < now:
        raise ConfigError(CERT, f"the certificate expired on {cert.not_valid_after_utc:%Y-%m-%d}")
    if cert.not_valid_before_utc > now:
        raise ConfigError(
            CERT, f"the certificate is not valid before {cert.not_valid_before_utc:%Y-%m-%d}"
        )


def _check_bundle(ca_pem: bytes) -> None:
    try:
        x509.load_pem_x509_certificates(ca_pem)
    except ValueError as exc:
        raise ConfigError(CA, f"not a PEM certificate bundle: {exc}") from None


def _load_chain(ctx: ssl.SSLContext, cert: Path, key: Path) -> None:
    try:
        ctx.load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(KEY, f"OpenSSL refused the certificate and key: {exc}") from None


def _load_ca(ctx: ssl.SSLContext, ca_pem: bytes | None) -> None:
    assert ca_pem is not None
    try:
        ctx.load_verify_locations(cadata=ca_pem.decode("ascii"))
    except (ssl.SSLError, ValueError) as exc:
        raise ConfigError(CA, f"OpenSSL refused the CA bundle: {exc}") from None
