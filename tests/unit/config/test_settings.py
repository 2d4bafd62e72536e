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
                  settings.COMPARE_OPTIONS, settings.REPORT_OPTIONS):  # fmt: skip
        for option in group:
            assert option.env in documented, f"{option.env} missing from .env.example"


def test_every_setting_is_in_the_readme_configuration_table() -> None:
    readme = (ROOT / "README.md").read_text()
    for group in (settings.RECEIVER_OPTIONS, settings.TRANSMITTER_OPTIONS,
                  settings.COMPARE_OPTIONS, settings.REPORT_OPTIONS):  # fmt: skip
        for option in group:
            assert f"`{option.env}`" in readme, f"{option.env} missing from README"


# Parsers and checks, value by value -------------------------------------------


@pytest.mark.parametrize("text", ["1", "true", "yes", "on", " TRUE ", "Yes", "ON"])
def test_parse_bool_true_spellings(text: str) -> None:
    assert settings.parse_bool(text) is True


@pytest.mark.parametrize("text", ["0", "false", "no", "off", "", "  ", "FALSE", " Off "])
def test_parse_bool_false_spellings(text: str) -> None:
    assert settings.parse_bool(text) is False


@pytest.mark.parametrize("text", ["maybe", "2", "y", "enable"])
def test_parse_bool_refuses_anything_else(text: str) -> None:
    expected = f"expected one of 1/0, true/false, yes/no, on/off, got {text!r}"
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        settings.parse_bool(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("1234", 1234),
        (" 77 ", 77),
        ("7b", 7),
        ("7B", 7),
        ("1kib", 1024),
        ("3KiB", 3 * 1024),
        ("1.5KiB", 1536),
        ("2mib", 2 * 1048576),
        (" 64 MiB ", 64 * 1048576),
        ("1GiB", 1073741824),
        ("2kb", 2000),
        ("5MB", 5_000_000),
        ("1gb", 1_000_000_000),
        ("0.5GB", 500_000_000),
    ],
)
def test_parse_size_units(text: str, expected: int) -> None:
    assert settings.parse_size(text) == expected


@pytest.mark.parametrize("text", ["ten", "MiB", "12 parsecs", "1.5"])
def test_parse_size_refuses_what_is_not_a_size(text: str) -> None:
    with pytest.raises(ValueError, match=r"invalid literal|could not convert"):
        settings.parse_size(text)


def test_parse_protocols() -> None:
    assert settings.parse_protocols("websocket") == ("websocket",)
    assert settings.parse_protocols(" GRPC , websocket ,") == ("grpc", "websocket")
    for empty in ("", " , ,"):
        with pytest.raises(ValueError, match=r"^at least one protocol is needed$"):
            settings.parse_protocols(empty)
    with pytest.raises(
        ValueError, match=r"^unknown protocol 'http' \(choose from websocket, grpc\)$"
    ):
        settings.parse_protocols("websocket,http")
    with pytest.raises(ValueError, match=r"^a protocol is listed twice$"):
        settings.parse_protocols("grpc,websocket,grpc")


def test_parse_optional_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/someone")
    assert settings.parse_optional_path("") is None
    assert settings.parse_optional_path("   ") is None
    assert settings.parse_optional_path("~/x.png") == Path("/home/someone/x.png")
    assert settings.parse_optional_path("a/b") == Path("a/b")


def test_choice_normalises_and_names_the_choices() -> None:
    parse = settings.choice("json", "console")
    assert parse(" JSON ") == "json"
    assert parse("console") == "console"
    with pytest.raises(ValueError, match=r"^choose from json, console, got 'text'$"):
        parse("text")


@pytest.mark.parametrize(
    ("value", "ok"), [(-1, False), (0, True), (1, True), (65535, True), (65536, False)]
)
def test_port_bounds_are_inclusive(value: int, ok: bool) -> None:
    problem = settings.port(value)
    assert problem == (None if ok else "must be a TCP port 0..65535 (0 = any free port)")


@pytest.mark.parametrize(
    ("value", "ok"), [(0.99, False), (1, True), (2, True), (3, True), (3.01, False), (4, False)]
)
def test_between_bounds_are_inclusive(value: float, ok: bool) -> None:
    problem = settings.between(1, 3)(value)
    assert problem == (None if ok else "must be within 1..3")


def test_existing_file(tmp_path: Path) -> None:
    there = tmp_path / "a.png"
    there.write_bytes(b"x")
    assert settings.existing_file(None) is None
    assert settings.existing_file(there) is None
    assert settings.existing_file(tmp_path / "b.png") == f"file {tmp_path / 'b.png'} does not exist"
    assert settings.existing_file(tmp_path) == f"{tmp_path} is a directory, not a file"
    (tmp_path / "empty.png").write_bytes(b"")
    assert settings.existing_file(tmp_path / "empty.png") == (
        f"file {tmp_path / 'empty.png'} is empty: there is nothing to send"
    )


def test_writable_dir(tmp_path: Path) -> None:
    assert settings.writable_dir(tmp_path / "new" / "deeper") is None  # created later
    (tmp_path / "f").write_text("x")
    assert settings.writable_dir(tmp_path / "f" / "r") == (
        f"cannot write results under {tmp_path / 'f' / 'r'}: {tmp_path / 'f'} is not a directory"
    )


#: Every bounded setting with its documented inclusive range (README "Configuration").
BOUNDS = [
    ("RECEIVER_PORT", 0, 65535, 1),
    ("RECEIVER_GRPC_PORT", 0, 65535, 1),
    ("RECEIVER_HTTP_PORT", 0, 65535, 1),
    ("TRANSMITTER_PORT", 0, 65535, 1),
    ("IMGBENCH_IMAGES", 1, 1_000_000, 1),
    ("IMGBENCH_DELAY", 0, 3600, 0.001),
    ("IMGBENCH_WARMUP", 0, 10_000, 1),
    ("IMGBENCH_IN_FLIGHT", 1, 1024, 1),
    ("IMGBENCH_REPEAT", 1, 1000, 1),
    ("IMGBENCH_CHUNK_BYTES", 1024, 2**31 - 1, 1),
    ("IMGBENCH_MAX_MESSAGE_BYTES", 1024, 2**31 - 1, 1),
    ("IMGBENCH_CONNECT_TIMEOUT", 0.1, 3600, 0.001),
    ("IMGBENCH_IMAGE_TIMEOUT", 0.01, 3600, 0.001),
    ("RUN_INTERVAL_SECONDS", 0, 86_400, 0.001),
    ("RECEIVER_MAX_IMAGE_BYTES", 1, 2**40, 1),
    ("RECEIVER_MAX_UPLOADS", 1, 10_000, 1),
    ("RECEIVER_MAX_RUNS", 1, 10_000, 1),
    ("RECEIVER_MAX_RECORDS_PER_RUN", 1, 100_000, 1),
    ("RECEIVER_LOG_BURST", 1, 1_000_000, 1),
    ("RECEIVER_MAX_IN_FLIGHT", 1, 100_000, 1),
]


#: Settings checked against each other: the companion is set to its widest value so
#: that only the bound under test can fail.
COMPANIONS = {"RECEIVER_MAX_IMAGE_BYTES": {"RECEIVER_MAX_UPLOAD_BUFFER_BYTES": str(2**40)}}


def _build(env: str, value: object) -> object:
    environ = {**COMPANIONS.get(env, {}), env: str(value)}
    if env.startswith("RECEIVER_") and env not in {"RECEIVER_PORT", "RECEIVER_GRPC_PORT",
                                                   "RECEIVER_HTTP_PORT"}:  # fmt: skip
        return settings.receiver_settings(environ=environ)
    return settings.transmitter_settings(environ=environ)


@pytest.mark.parametrize(("env", "low", "high", "step"), BOUNDS, ids=[b[0] for b in BOUNDS])
def test_every_bound_is_inclusive_and_refused_one_step_beyond(
    env: str, low: float, high: float, step: float
) -> None:
    name = next(o.name for o in (*settings.RECEIVER_OPTIONS, *settings.TRANSMITTER_OPTIONS)
                if o.env == env)  # fmt: skip
    for ok in (low, high):
        assert getattr(_build(env, ok), name) == ok
    for bad in (low - step, high + step):
        with pytest.raises(ConfigError, match=rf"^invalid setting {env} \(--[a-z-]+\): must be "):
            _build(env, bad)


# Resolution: flag, environment, default ---------------------------------------


def test_resolve_names_the_setting_and_shows_the_raw_value() -> None:
    with pytest.raises(ConfigError) as info:
        settings.transmitter_settings(environ={"IMGBENCH_IMAGES": "ten"})
    assert info.value.setting == "IMGBENCH_IMAGES (--images)"
    assert str(info.value).startswith(
        "invalid setting IMGBENCH_IMAGES (--images): cannot parse 'ten': invalid literal"
    )
    with pytest.raises(ConfigError) as info:
        settings.transmitter_settings(environ={"IMGBENCH_IMAGES": "0"})
    assert str(info.value) == (
        "invalid setting IMGBENCH_IMAGES (--images): must be within 1..1000000, got 0"
    )
    assert info.value.reason == "must be within 1..1000000, got 0"


def test_receiver_settings_take_flags_then_environment_then_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parser = build_parser()
    args = parser.parse_args(
        ["receiver", "--port", "1111", "--max-runs", "5", "--save-dir", "/tmp/s"]
    )
    env = {"RECEIVER_PORT": "2222", "RECEIVER_GRPC_PORT": "3333", "RECEIVER_MAX_RUNS": "6"}
    r = settings.receiver_settings(args, env)
    assert (r.ws_port, r.grpc_port, r.http_port) == (1111, 3333, 9101)
    assert (r.max_runs, r.save_dir, r.bind) == (5, Path("/tmp/s"), "127.0.0.1")
    # Without an explicit mapping the process environment applies.
    monkeypatch.setenv("RECEIVER_MAX_IN_FLIGHT", "9")
    monkeypatch.setenv("RECEIVER_BIND", "0.0.0.0")
    r = settings.receiver_settings()
    assert (r.max_in_flight, r.bind) == (9, "0.0.0.0")


def test_transmitter_settings_read_the_process_environment_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRANSMITTER_SERVE", "yes")
    monkeypatch.setenv("IMGBENCH_GRPC_MODE", "Stream")
    s = settings.transmitter_settings()
    assert (s.serve, s.grpc_mode) == (True, "stream")
    # The service options are not part of the compare command's table.
    assert (
        settings.transmitter_settings(
            environ={"TRANSMITTER_SERVE": "yes"}, options=settings.COMPARE_OPTIONS
        ).serve
        is False
    )


def test_boolean_flags_work_bare_and_with_a_value() -> None:
    parser = build_parser()
    bare = settings.transmitter_settings(parser.parse_args(["transmitter", "--serve"]), {})
    assert bare.serve is True
    off = settings.transmitter_settings(
        parser.parse_args(["transmitter", "--serve=false"]), {"TRANSMITTER_SERVE": "1"}
    )
    assert off.serve is False
    with pytest.raises(SystemExit):
        parser.parse_args(["transmitter", "--api-port"])  # a valued flag needs its value


def test_flag_help_names_the_variable_and_the_default() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    settings.add_arguments(parser, settings.COMPARE_OPTIONS)
    actions = {a.dest: a for a in parser._actions}
    assert actions["protocols"].help is not None
    assert actions["protocols"].help.endswith("[env IMGBENCH_PROTOCOLS, default websocket,grpc]")
    assert actions["image"].help is not None
    assert actions["image"].help.endswith("[env IMGBENCH_IMAGE, default none]")
    assert actions["images"].help is not None
    assert actions["images"].help.endswith("[env IMGBENCH_IMAGES, default 10]")
    # The metavar names the value (or lists the allowed ones), not the env variable.
    assert actions["images"].metavar == "IMAGES" and actions["images"].default is None
    assert actions["ws_mode"].metavar == "{binary,json}"
    assert actions["compression"].metavar == "BOOL"
    assert actions["compression"].nargs == "?" and actions["compression"].const == "true"
    assert actions["images"].nargs is None


def test_public_settings_are_json_friendly() -> None:
    s = settings.transmitter_settings(environ={"IMGBENCH_PROTOCOLS": "grpc"})
    public = s.public()
    assert public["protocols"] == ["grpc"]
    assert public["output"] == "results" and public["image"] is None
    assert public["images"] == 10 and public["delay"] == 1.0
    # Only the settings that apply: the service-mode ones only in service mode.
    service_only = {o.name for o in settings.SERVICE_OPTIONS}
    assert set(public) == {f.name for f in __import__("dataclasses").fields(s)} - service_only
    served = settings.transmitter_settings(environ={"TRANSMITTER_SERVE": "1"}).public()
    assert service_only <= set(served)


def test_mode_of_each_protocol_follows_its_mode_setting_and_the_direction() -> None:
    from dataclasses import replace

    from imgbench.wire.names import PUSH_MODE

    s = settings.transmitter_settings(environ={"IMGBENCH_WS_MODE": "json",
                                               "IMGBENCH_GRPC_MODE": "stream"})  # fmt: skip
    assert (s.mode_of("websocket"), s.mode_of("grpc")) == ("json", "stream")
    push = replace(s, direction="push")
    assert (push.mode_of("websocket"), push.mode_of("grpc")) == (PUSH_MODE, PUSH_MODE)


def test_link_spec_is_checked_and_kept_as_written() -> None:
    assert settings.parse_link_text("") == ""
    assert settings.parse_link_text("   ") == ""
    assert settings.parse_link_text(" rtt=40ms,rate=100mbit ") == "rtt=40ms,rate=100mbit"
    with pytest.raises(ConfigError, match=r"link\.rtt"):
        settings.parse_link_text("rtt=soon")


@pytest.mark.parametrize(
    ("value", "ok"),
    [(0, True), (1, False), (16383, False), (16384, True), (16_777_215, True), (16_777_216, False)],
)
def test_grpc_frame_size_is_0_or_within_http2s_range(value: int, ok: bool) -> None:
    expected = (
        None
        if ok
        else ("must be 0 (grpcio's default, 16384) or 16384..16777215 bytes (HTTP/2's range)")
    )
    assert settings.grpc_frame_size(value) == expected


def test_the_largest_image_must_fit_in_the_upload_buffer() -> None:
    same = {"RECEIVER_MAX_IMAGE_BYTES": "1MiB", "RECEIVER_MAX_UPLOAD_BUFFER_BYTES": "1MiB"}
    r = settings.receiver_settings(environ=same)
    assert (r.max_image_bytes, r.max_upload_buffer_bytes) == (1048576, 1048576)
    over = {**same, "RECEIVER_MAX_UPLOAD_BUFFER_BYTES": str(1048575)}
    with pytest.raises(ConfigError) as info:
        settings.receiver_settings(environ=over)
    assert str(info.value) == (
        "invalid setting RECEIVER_MAX_UPLOAD_BUFFER_BYTES (--max-upload-buffer-bytes):"
        " must be at least RECEIVER_MAX_IMAGE_BYTES (1048576), got 1048575"
    )
