"""``imgbench certs``: what it writes, what it refuses, when it keeps (real files, real TLS)."""

from __future__ import annotations

import ipaddress
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509

from imgbench.cli import main
from imgbench.security.certs import Authority, write_files
from imgbench.security.certs_command import FILES, unusable


def certs(out: Path, *extra: str) -> int:
    return main(["certs", "--out", str(out), *extra])


def snapshot(directory: Path) -> dict[str, bytes]:
    return {name: (directory / name).read_bytes() for name in FILES}


def sans(path: Path) -> set[str]:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {*ext.get_values_for_type(x509.DNSName)} | {
        str(ip) for ip in ext.get_values_for_type(x509.IPAddress)
    }


def test_writes_a_ca_a_certificate_for_the_hosts_and_a_private_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "new" / "certs"
    assert certs(out, "--hosts", "receiver, transmitter,10.0.0.7", "--days", "3") == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    assert stat.S_IMODE((out / "key.pem").stat().st_mode) == 0o600
    assert sans(out / "cert.pem") == {"localhost", "127.0.0.1", "::1", "receiver",
                                      "transmitter", "10.0.0.7"}  # fmt: skip
    ca = x509.load_pem_x509_certificate((out / "ca.pem").read_bytes())
    leaf = x509.load_pem_x509_certificate((out / "cert.pem").read_bytes())
    leaf.verify_directly_issued_by(ca)
    life = leaf.not_valid_after_utc - datetime.now(UTC)
    assert timedelta(days=2, hours=23) < life <= timedelta(days=3), life
    assert ca.not_valid_after_utc == leaf.not_valid_after_utc
    # The CA's private key is never written: only one key, the leaf's.
    assert b"PRIVATE KEY" not in (out / "ca.pem").read_bytes() + (out / "cert.pem").read_bytes()
    # A set the services accept, for every host (handshake against ca.pem).
    assert unusable(out, ["receiver", "transmitter", "10.0.0.7"]) is None
    assert "wrote" in capsys.readouterr().out


def test_refuses_to_overwrite_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert certs(tmp_path) == 0
    before = snapshot(tmp_path)
    assert certs(tmp_path, "--hosts", "receiver") == 2
    err = capsys.readouterr().err
    assert "--out" in err and "--force" in err and "--keep" in err, err
    assert snapshot(tmp_path) == before
    # One file alone is refused too.
    lone = tmp_path / "lone"
    lone.mkdir()
    (lone / "key.pem").write_text("mine")
    assert certs(lone) == 2
    assert (lone / "key.pem").read_text() == "mine"


def test_force_replaces_and_the_key_ends_up_private(tmp_path: Path) -> None:
    assert certs(tmp_path) == 0
    before = snapshot(tmp_path)
    (tmp_path / "key.pem").chmod(0o644)
    assert certs(tmp_path, "--force") == 0
    after = snapshot(tmp_path)
    assert all(after[name] != before[name] for name in FILES)
    assert stat.S_IMODE((tmp_path / "key.pem").stat().st_mode) == 0o600


def test_keep_leaves_a_usable_set_alone(tmp_path: Path) -> None:
    assert certs(tmp_path, "--hosts", "receiver,transmitter") == 0
    before = snapshot(tmp_path)
    assert certs(tmp_path, "--hosts", "transmitter", "--keep") == 0
    assert snapshot(tmp_path) == before


def break_hosts(d: Path) -> list[str]:
    return ["receiver", "elsewhere"]


def break_ca(d: Path) -> list[str]:
    (d / "ca.pem").write_bytes(Authority("another CA").cert_pem)
    return ["receiver"]


def break_key(d: Path) -> list[str]:
    (d / "key.pem").unlink()
    return ["receiver"]


def break_pair(d: Path) -> list[str]:
    other = write_files(d / "other", ["receiver"])
    assert other.key is not None
    (d / "key.pem").write_bytes(other.key.read_bytes())
    return ["receiver"]


def break_expiry(d: Path) -> list[str]:
    # Valid for a day from now: less than the margin --keep wants.
    write_files(d, ["receiver"], authority=Authority(validity=timedelta(hours=23)))
    return ["receiver"]


@pytest.mark.parametrize(
    ("breaker", "why"),
    [
        (break_hosts, "not valid for 'elsewhere'"),
        (break_ca, "refuses it for localhost"),
        (break_key, "key.pem missing"),
        (break_pair, "does not belong"),
        (break_expiry, "expires on"),
    ],
)
def test_keep_replaces_a_set_that_would_not_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], breaker: object, why: str
) -> None:
    assert certs(tmp_path, "--hosts", "receiver") == 0
    assert callable(breaker)
    hosts = breaker(tmp_path)
    assert unusable(tmp_path, hosts) is not None
    assert certs(tmp_path, "--hosts", ",".join(hosts), "--keep") == 0
    assert why in capsys.readouterr().out
    assert unusable(tmp_path, hosts) is None


def test_owner(tmp_path: Path) -> None:
    uid, gid = (10001, 10001) if os.getuid() == 0 else (os.getuid(), os.getgid())
    assert certs(tmp_path, "--owner", f"{uid}:{gid}") == 0
    for name in FILES:
        info = (tmp_path / name).stat()
        assert (info.st_uid, info.st_gid) == (uid, gid), name


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--hosts", "receiver,,transmitter"], "--hosts"),
        (["--hosts", "under_score"], "--hosts"),
        (["--hosts=-leading.dash"], "--hosts"),
        (["--hosts", "a" * 64], "--hosts"),
        (["--days", "0"], "--days"),
        (["--days", "398"], "--days"),
        (["--owner", "imgbench"], "--owner"),
        (["--owner", "10001:"], "--owner"),
    ],
)
def test_bad_arguments_exit_2_naming_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], named: str
) -> None:
    assert certs(tmp_path / "out", *args) == 2
    assert f"invalid setting {named}:" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # nothing written


def test_out_that_is_a_file_or_conflicting_flags_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert certs(a_file) == 2
    assert "--out" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        certs(tmp_path, "--force", "--keep")
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["certs"])  # --out is required
    assert exc.value.code == 2


def test_ip_hosts_are_checked_as_addresses(tmp_path: Path) -> None:
    assert certs(tmp_path, "--hosts", "fd00::1") == 0
    assert str(ipaddress.ip_address("fd00::1")) in sans(tmp_path / "cert.pem")
    assert unusable(tmp_path, ["fd00::1"]) is None
    assert unusable(tmp_path, ["fd00::2"]) is not None
