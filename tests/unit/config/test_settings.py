"""Settings: flags over environment over defaults; bad values name the setting."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from imgbench.cli import build_parser
from imgbench.config import settings
from imgbench.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]


def test_defaults_match_the_documented_ones() -> None:
    s = settings.transmitter_settings(environ={})
    assert (s.images, s.delay, s.protocols) == (10, 1.0, ("websocket", "grpc"))
    assert s.max_message_bytes == 64 * 1024 * 1024
    assert s.compression is False
    r = settings.receiver_settings(environ={})
    assert (r.ws_port, r.grpc_port, r.max_message_bytes) == (8765, 50051, 64 * 1024 * 1024)


def test_flag_overrides_environment_which_overrides_default() -> None:
    parser = build_parser()
    env = {"IMGBENCH_IMAGES": "7", "IMGBENCH_DELAY": "0.5"}
    args = parser.parse_args(["compare", "--images", "3"])
    s = settings.transmitter_settings(args, env, options=settings.COMPARE_OPTIONS)
    assert s.images == 3  # flag
    assert s.delay == 0.5  # environment
    assert s.warmup == 1  # default


@pytest.mark.parametrize(
    ("env", "setting", "why"),
    [
        ({"IMGBENCH_IMAGES": "0"}, "IMGBENCH_IMAGES (--images)", "must be within"),
        ({"IMGBENCH_IMAGES": "ten"}, "IMGBENCH_IMAGES (--images)", "cannot parse"),
        ({"IMGBENCH_DELAY": "-1"}, "IMGBENCH_DELAY (--delay)", "must be within"),
        ({"RECEIVER_PORT": "70000"}, "RECEIVER_PORT (--port)", "TCP port"),
        ({"IMGBENCH_PROTOCOLS": "websocket,http"}, "IMGBENCH_PROTOCOLS", "unknown protocol"),
        ({"IMGBENCH_PROTOCOLS": "grpc,grpc"}, "IMGBENCH_PROTOCOLS", "twice"),
        ({"IMGBENCH_IMAGE": "/no/such/file.png"}, "IMGBENCH_IMAGE", "does not exist"),
        ({"IMGBENCH_COMPRESSION": "maybe"}, "IMGBENCH_COMPRESSION", "expected one of"),
        ({"IMGBENCH_WS_MODE": "text"}, "IMGBENCH_WS_MODE", "choose from"),
        ({"IMGBENCH_MAX_MESSAGE_BYTES": "12"}, "IMGBENCH_MAX_MESSAGE_BYTES", "must be within"),
    ],
)
def test_bad_values_name_the_setting_and_the_reason(
    env: dict[str, str], setting: str, why: str
) -> None:
    with pytest.raises(ConfigError) as info:
        settings.transmitter_settings(environ=env)
    assert setting in str(info.value)
    assert why in str(info.value)


def test_sizes_accept_binary_units() -> None:
    assert settings.parse_size("64MiB") == 64 * 1024 * 1024
    assert settings.parse_size("16KiB") == 16 * 1024
    assert settings.parse_size("5MB") == 5_000_000
    assert settings.parse_size("1234") == 1234


def test_every_setting_is_documented_in_env_example() -> None:
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(),
                                re.MULTILINE))  # fmt: skip
    for group in (settings.RECEIVER_OPTIONS, settings.TRANSMITTER_OPTIONS,
                  settings.COMPARE_OPTIONS):  # fmt: skip
        for option in group:
            assert option.env in documented, f"{option.env} missing from .env.example"


def test_every_setting_is_in_the_readme_configuration_table() -> None:
    readme = (ROOT / "README.md").read_text()
    for group in (settings.RECEIVER_OPTIONS, settings.TRANSMITTER_OPTIONS,
                  settings.COMPARE_OPTIONS):  # fmt: skip
        for option in group:
            assert f"`{option.env}`" in readme, f"{option.env} missing from README"
