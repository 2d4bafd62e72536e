"""The security settings: token from the environment or a file, never both, never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from imgbench.config import receiver_settings, transmitter_settings
from imgbench.errors import ConfigError

TOKEN = "a-token-of-enough-length-42"


def test_the_token_comes_from_the_variable_or_the_file(tmp_path: Path) -> None:
    assert receiver_settings(environ={"IMGBENCH_TOKEN": TOKEN}).token == TOKEN
    secret = tmp_path / "token"
    secret.write_text(f"  {TOKEN}\n")
    assert receiver_settings(environ={"IMGBENCH_TOKEN_FILE": str(secret)}).token == TOKEN
    with pytest.raises(ConfigError) as both:
        receiver_settings(environ={"IMGBENCH_TOKEN_FILE": str(secret), "IMGBENCH_TOKEN": TOKEN})
    assert both.value.setting == "IMGBENCH_TOKEN_FILE (--token-file)"
    secret.write_text("short\n")
    with pytest.raises(ConfigError) as weak:
        transmitter_settings(environ={"IMGBENCH_TOKEN_FILE": str(secret)})
    assert "at least 16" in weak.value.reason
    with pytest.raises(ConfigError) as missing:
        receiver_settings(environ={"IMGBENCH_TOKEN_FILE": str(tmp_path / "nope")})
    assert missing.value.setting == "IMGBENCH_TOKEN_FILE (--token-file)"


def test_a_weak_token_is_refused_naming_the_variable() -> None:
    with pytest.raises(ConfigError) as weak:
        receiver_settings(environ={"IMGBENCH_TOKEN": "password"})
    assert weak.value.setting == "IMGBENCH_TOKEN (--token)"


def test_the_token_never_shows_in_a_repr_or_the_saved_settings() -> None:
    settings = transmitter_settings(environ={"IMGBENCH_TOKEN": TOKEN})
    assert TOKEN not in repr(settings)
    public = settings.public()
    assert public["token"] is True and TOKEN not in repr(public)


def test_tls_is_on_when_asked_or_implied_by_a_certificate_or_ca(tmp_path: Path) -> None:
    pem = tmp_path / "x.pem"
    pem.write_text("-----BEGIN CERTIFICATE-----\n")
    assert not receiver_settings(environ={}).tls_on
    assert receiver_settings(environ={"IMGBENCH_TLS": "true"}).tls_on
    assert transmitter_settings(environ={"IMGBENCH_TLS_CA": str(pem)}).security.tls_on
    assert receiver_settings(environ={"IMGBENCH_TLS_CERT": str(pem)}).tls_on
    with pytest.raises(ConfigError) as missing:
        receiver_settings(environ={"IMGBENCH_TLS_CERT": str(tmp_path / "nope.pem")})
    assert missing.value.setting == "IMGBENCH_TLS_CERT (--tls-cert)"


def test_a_token_file_that_cannot_be_used_is_refused_naming_it(tmp_path: Path) -> None:
    label = "IMGBENCH_TOKEN_FILE (--token-file)"
    secret = tmp_path / "token"
    secret.write_text(TOKEN)
    with pytest.raises(ConfigError) as both:
        receiver_settings(environ={"IMGBENCH_TOKEN_FILE": str(secret), "IMGBENCH_TOKEN": TOKEN})
    assert both.value.reason == "give IMGBENCH_TOKEN or IMGBENCH_TOKEN_FILE, not both"
    secret.write_bytes(b"\xff\xfe not text")
    with pytest.raises(ConfigError) as binary:
        transmitter_settings(environ={"IMGBENCH_TOKEN_FILE": str(secret)})
    assert binary.value.setting == label
    assert binary.value.reason.startswith(f"cannot read {secret}: 'utf-8' codec can't decode")
    secret.write_text("short\n")
    with pytest.raises(ConfigError) as weak:
        transmitter_settings(environ={"IMGBENCH_TOKEN_FILE": str(secret)})
    assert weak.value.setting == label
    assert weak.value.reason.startswith(f"the token in {secret} ")
