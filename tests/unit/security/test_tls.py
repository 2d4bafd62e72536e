"""TLS material checks: each bad file stops the start-up naming its setting."""

from __future__ import annotations

import ssl
from dataclasses import replace
from pathlib import Path

import pytest

from imgbench.errors import ConfigError
from imgbench.security.certs import Authority, write_files
from imgbench.security.tls import CA, CERT, KEY, MINIMUM_VERSION, Tls, TlsFiles

from helpers.pki import Pki


def refusal(files: TlsFiles, *, server: bool = True) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        Tls(files, server=server)
    return caught.value


def test_good_files_give_tls_1_3_contexts_and_grpc_credentials(pki: Pki) -> None:
    tls = Tls(pki.good, server=True)
    assert tls.server_context().minimum_version == MINIMUM_VERSION == ssl.TLSVersion.TLSv1_3
    client = tls.client_context()
    assert client.minimum_version == ssl.TLSVersion.TLSv1_3
    assert client.verify_mode == ssl.CERT_REQUIRED and client.check_hostname
    assert tls.grpc_server_credentials() is not None
    assert tls.grpc_channel_credentials() is not None
    # A client-only process needs no certificate; it verifies against the CA.
    Tls(TlsFiles(ca=pki.good.ca), server=False)


def test_mutual_tls_requires_client_certificates(pki: Pki) -> None:
    tls = Tls(replace(pki.good, client_auth=True), server=True)
    assert tls.server_context().verify_mode == ssl.CERT_REQUIRED
    assert refusal(replace(pki.good, ca=None, client_auth=True)).setting == CA


def test_missing_or_unreadable_files_name_their_setting(pki: Pki, tmp_path: Path) -> None:
    assert refusal(replace(pki.good, cert=tmp_path / "nope.pem")).setting == CERT
    assert refusal(replace(pki.good, key=tmp_path)).setting == KEY  # a directory
    assert refusal(replace(pki.good, ca=tmp_path / "nope.pem")).setting == CA
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    assert "not a PEM file" in refusal(replace(pki.good, cert=junk)).reason
    assert refusal(replace(pki.good, ca=pki.good.key)).setting == CA  # a key, not a cert


def test_a_key_of_another_certificate_is_refused(pki: Pki) -> None:
    caught = refusal(replace(pki.good, key=pki.other.key))
    assert caught.setting == KEY and "does not belong" in caught.reason


def test_a_listening_service_needs_certificate_and_key(pki: Pki) -> None:
    assert refusal(TlsFiles(ca=pki.good.ca)).setting == CERT
    assert refusal(replace(pki.good, key=None)).setting == KEY
    assert refusal(replace(pki.good, cert=None), server=False).setting == CERT


def test_an_encrypted_key_is_refused(pki: Pki, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(pki.good.key.read_bytes(), None)
    locked = tmp_path / "locked.pem"
    locked.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                         serialization.PrivateFormat.PKCS8,
                                         serialization.BestAvailableEncryption(b"pw")))  # fmt: skip
    caught = refusal(replace(pki.good, key=locked))
    assert caught.setting == KEY and "encrypted" in caught.reason


def test_generated_certificates_name_the_loopback_hosts_and_extra_ones(tmp_path: Path) -> None:
    from cryptography import x509

    files = write_files(tmp_path, ["receiver", "198.18.0.2"], authority=Authority())
    assert files.key is not None and files.key.stat().st_mode & 0o077 == 0  # owner only
    assert files.cert is not None
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(names.get_values_for_type(x509.DNSName)) == {"localhost", "receiver"}
    assert {str(a) for a in names.get_values_for_type(x509.IPAddress)} == {
        "127.0.0.1", "::1", "198.18.0.2"}  # fmt: skip
    Tls(files, server=True)  # and they pass the checks
