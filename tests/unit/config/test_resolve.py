"""Resolution: flags over environment over defaults; bad values name the setting."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from imgbench import config
from imgbench.cli import build_parser
from imgbench.config import resolve
from imgbench.config.transmitter_options import RUN_OVERRIDES
from imgbench.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]


def test_defaults_match_the_documented_ones() -> None:
    s = config.transmitter_settings(environ={})
    work = s.workload
    assert (work.images, work.delay, work.protocols) == (10, 1.0, ("websocket", "grpc"))
    assert s.transport.max_message_bytes == 64 * 1024 * 1024
    assert work.compression is False
    r = config.receiver_settings(environ={})
    assert (r.ws_port, r.grpc_port, r.max_message_bytes) == (8765, 50051, 64 * 1024 * 1024)


def test_flag_overrides_environment_which_overrides_default() -> None:
    parser = build_parser()
    env = {"IMGBENCH_IMAGES": "7", "IMGBENCH_DELAY": "0.5"}
    args = parser.parse_args(["compare", "--images", "3"])
    s = config.transmitter_settings(args, env, options=config.COMPARE_OPTIONS)
    assert s.workload.images == 3  # flag
    assert s.workload.delay == 0.5  # environment
    assert s.workload.warmup == 1  # default


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
        config.transmitter_settings(environ=env)
    assert setting in str(info.value)
    assert why in str(info.value)


def test_sizes_accept_binary_units() -> None:
    assert config.parse_size("64MiB") == 64 * 1024 * 1024
    assert config.parse_size("16KiB") == 16 * 1024
    assert config.parse_size("5MB") == 5_000_000
    assert config.parse_size("1234") == 1234


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


def _build(env: str, value: object) -> dict[str, object]:
    """The resolved settings by name."""
    environ = {**COMPANIONS.get(env, {}), env: str(value)}
    if env.startswith("RECEIVER_") and env not in {"RECEIVER_PORT", "RECEIVER_GRPC_PORT",
                                                   "RECEIVER_HTTP_PORT"}:  # fmt: skip
        return dataclasses.asdict(config.receiver_settings(environ=environ))
    return config.transmitter_settings(environ=environ).values()


@pytest.mark.parametrize(("env", "low", "high", "step"), BOUNDS, ids=[b[0] for b in BOUNDS])
def test_every_bound_is_inclusive_and_refused_one_step_beyond(
    env: str, low: float, high: float, step: float
) -> None:
    name = next(o.name for o in (*config.RECEIVER_OPTIONS, *config.TRANSMITTER_OPTIONS)
                if o.env == env)  # fmt: skip
    for ok in (low, high):
        assert _build(env, ok)[name] == ok
    for bad in (low - step, high + step):
        with pytest.raises(ConfigError, match=rf"^invalid setting {env} \(--[a-z-]+\): must be "):
            _build(env, bad)


# Resolution: flag, environment, default ---------------------------------------


def test_resolve_names_the_setting_and_shows_the_raw_value() -> None:
    with pytest.raises(ConfigError) as info:
        config.transmitter_settings(environ={"IMGBENCH_IMAGES": "ten"})
    assert info.value.setting == "IMGBENCH_IMAGES (--images)"
    assert str(info.value).startswith(
        "invalid setting IMGBENCH_IMAGES (--images): cannot parse 'ten': invalid literal"
    )
    with pytest.raises(ConfigError) as info:
        config.transmitter_settings(environ={"IMGBENCH_IMAGES": "0"})
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
    r = config.receiver_settings(args, env)
    assert (r.ws_port, r.grpc_port, r.http_port) == (1111, 3333, 9101)
    assert (r.max_runs, r.save_dir, r.bind) == (5, Path("/tmp/s"), "127.0.0.1")
    # Without an explicit mapping the process environment applies.
    monkeypatch.setenv("RECEIVER_MAX_IN_FLIGHT", "9")
    monkeypatch.setenv("RECEIVER_BIND", "0.0.0.0")
    r = config.receiver_settings()
    assert (r.max_in_flight, r.bind) == (9, "0.0.0.0")


def test_transmitter_settings_read_the_process_environment_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRANSMITTER_SERVE", "yes")
    monkeypatch.setenv("IMGBENCH_GRPC_MODE", "Stream")
    s = config.transmitter_settings()
    assert (s.service.serve, s.workload.grpc_mode) == (True, "stream")
    # The service options are not part of the compare command's table.
    assert (
        config.transmitter_settings(
            environ={"TRANSMITTER_SERVE": "yes"}, options=config.COMPARE_OPTIONS
        ).service.serve
        is False
    )


def test_boolean_flags_work_bare_and_with_a_value() -> None:
    parser = build_parser()
    bare = config.transmitter_settings(parser.parse_args(["transmitter", "--serve"]), {})
    assert bare.service.serve is True
    off = config.transmitter_settings(
        parser.parse_args(["transmitter", "--serve=false"]), {"TRANSMITTER_SERVE": "1"}
    )
    assert off.service.serve is False
    with pytest.raises(SystemExit):
        parser.parse_args(["transmitter", "--api-port"])  # a valued flag needs its value


def test_flag_help_names_the_variable_and_the_default() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    config.add_arguments(parser, config.COMPARE_OPTIONS)
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


def test_the_largest_image_must_fit_in_the_upload_buffer() -> None:
    same = {"RECEIVER_MAX_IMAGE_BYTES": "1MiB", "RECEIVER_MAX_UPLOAD_BUFFER_BYTES": "1MiB"}
    r = config.receiver_settings(environ=same)
    assert (r.max_image_bytes, r.max_upload_buffer_bytes) == (1048576, 1048576)
    over = {**same, "RECEIVER_MAX_UPLOAD_BUFFER_BYTES": str(1048575)}
    with pytest.raises(ConfigError) as info:
        config.receiver_settings(environ=over)
    assert str(info.value) == (
        "invalid setting RECEIVER_MAX_UPLOAD_BUFFER_BYTES (--max-upload-buffer-bytes):"
        " must be at least RECEIVER_MAX_IMAGE_BYTES (1048576), got 1048575"
    )


# POST /runs overrides ---------------------------------------------------------------


def test_a_run_may_override_the_workload_push_and_transport_settings_only() -> None:
    base = config.transmitter_settings(environ={})
    names = {o.name for o in RUN_OVERRIDES}
    assert names == {
        "images", "delay", "warmup", "protocols", "in_flight", "repeat", "ws_mode",
        "grpc_mode", "direction", "chunk_bytes", "compression", "connect_timeout",
        "image_timeout", "push_host", "push_ws_port", "push_grpc_port", "max_message_bytes",
        "grpc_bdp_probe", "grpc_lookahead_bytes", "grpc_max_frame_size", "ws_write_limit",
        "ws_max_queue",
    }  # fmt: skip
    for name in ("image", "output", "receiver_host", "serve", "link", "telemetry"):
        with pytest.raises(ConfigError) as info:
            resolve.override_workload(base, {name: "x"})
        assert info.value.setting == name
        assert info.value.reason.startswith("not a workload setting (one of chunk_bytes, ")


def test_run_overrides_are_parsed_and_checked_and_land_in_their_part() -> None:
    base = config.transmitter_settings(environ={})
    body = {"images": 20, "protocols": ["grpc"], "compression": "on", "ws_max_queue": "8",
            "push_ws_port": 7000}  # fmt: skip
    run = resolve.override_workload(base, body)
    assert (run.workload.images, run.workload.protocols) == (20, ("grpc",))
    assert run.workload.compression is True
    assert (run.transport.ws_max_queue, run.push.push_ws_port) == (8, 7000)
    assert run.target == base.target and run.observe == base.observe
    assert base.workload.images == 10  # the base is unchanged
    with pytest.raises(ConfigError) as info:
        resolve.override_workload(base, {"images": 0})
    assert info.value.setting == "images"
    assert info.value.reason == "must be within 1..1000000, got 0"
    with pytest.raises(ConfigError) as info:
        resolve.override_workload(base, {"delay": "soon"})
    assert info.value.setting == "delay"
    assert info.value.reason.startswith("cannot parse 'soon'")


def test_the_receivers_ports_must_differ_unless_0() -> None:
    assert config.receiver_settings(environ={"RECEIVER_PORT": "0", "RECEIVER_GRPC_PORT": "0",
                                             "RECEIVER_HTTP_PORT": "0"}).ws_port == 0  # fmt: skip
    with pytest.raises(ConfigError) as info:
        config.receiver_settings(environ={"RECEIVER_HTTP_PORT": "8765"})
    assert str(info.value) == (
        "invalid setting RECEIVER_HTTP_PORT (--http-port): must differ from"
        " RECEIVER_PORT (--port), both are 8765"
    )


def test_help_says_when_a_setting_only_applies_with_an_external_receiver() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    config.add_arguments(parser, config.COMPARE_OPTIONS, only_with_external=config.EXTERNAL_ONLY)
    actions = {a.dest: a for a in parser._actions}
    assert actions["ws_port"].help == (
        "Receiver WebSocket port. Only with --external-receiver (a local receiver takes free"
        " ports). [env RECEIVER_PORT, default 8765 with --external-receiver]"
    )
    assert actions["images"].help is not None and "external" not in actions["images"].help
    report = argparse.ArgumentParser()
    config.add_arguments(report, config.REPORT_OPTIONS)
    given = report.parse_args(["--threshold", "grpc:p50<1ms", "--threshold", "grpc:p90<2ms"])
    assert given.thresholds == ["grpc:p50<1ms", "grpc:p90<2ms"]
    assert len(config.report_settings(given, {}).thresholds) == 2


@pytest.mark.parametrize(
    ("value", "shown"),
    [((), "none"), (None, "none"), (("a", "b"), "a,b"), (8765, "8765"), (Path("r"), "r")],
)
def test_defaults_are_shown_in_help_as_written(value: object, shown: str) -> None:
    assert resolve._show(value) == shown


def test_a_refused_path_is_shown_as_text(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        config.transmitter_settings(environ={"IMGBENCH_IMAGE": str(tmp_path)})
    assert info.value.reason == f"{tmp_path} is a directory, not a file, got '{tmp_path}'"


def test_no_check_runs_on_an_unset_optional_value() -> None:
    assert config.transmitter_settings(environ={}).workload.image is None
    assert config.transmitter_settings(environ={"IMGBENCH_IMAGE": ""}).workload.image is None


def test_settings_resolve_from_another_commands_arguments() -> None:
    """Flags of options the parser does not have are simply not given."""
    import argparse

    other = argparse.Namespace(command="report")
    assert config.transmitter_settings(other, {"IMGBENCH_IMAGES": "4"}).workload.images == 4
    assert config.report_settings(other, {}).format == "text"


def test_each_port_must_differ_from_the_others() -> None:
    with pytest.raises(ConfigError) as info:
        config.receiver_settings(environ={"RECEIVER_GRPC_PORT": "8765"})
    assert info.value.setting == "RECEIVER_GRPC_PORT (--grpc-port)"
    with pytest.raises(ConfigError) as info:
        config.receiver_settings(environ={"RECEIVER_HTTP_PORT": "50051"})
    assert info.value.reason == "must differ from RECEIVER_GRPC_PORT (--grpc-port), both are 50051"


def test_a_list_in_a_run_body_is_the_comma_separated_text() -> None:
    base = config.transmitter_settings(environ={})
    run = resolve.override_workload(base, {"protocols": ["grpc", "websocket"]})
    assert run.workload.protocols == ("grpc", "websocket")
