"""The pure parts of ``--link``: what the child inherits, and the flags it gets."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from imgbench import config
from imgbench.cli import build_parser
from imgbench.errors import ConfigError
from transmitter.compare import child_env
from transmitter.linked import LAB_OPTIONS, NOT_PASSED, child_flags, refuse_unusable


def test_child_env_is_explicit_not_a_copy_of_ours() -> None:
    ours = {
        "PATH": "/usr/bin",
        "HOME": "/root",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317",
        "RECEIVER_MAX_IN_FLIGHT": "1",
        "IMGBENCH_LINK": "rtt=10ms",
        "AWS_SECRET_ACCESS_KEY": "x",
    }
    env = child_env({"IMGBENCH_READY_FILE": "/tmp/r.json"}, ours)
    assert env == {
        "PATH": "/usr/bin",
        "HOME": "/root",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317",
        "IMGBENCH_READY_FILE": "/tmp/r.json",
    }


def _settings(argv: list[str], environ: dict[str, str]) -> config.TransmitterSettings:
    parser = argparse.ArgumentParser()
    config.add_arguments(parser, LAB_OPTIONS)
    return config.transmitter_settings(
        parser.parse_args(argv), environ, options=config.COMPARE_OPTIONS
    )


def test_child_flags_reproduce_every_resolved_setting_except_the_target() -> None:
    cfg = _settings(
        ["--images", "3", "--link", "rtt=20ms", "--protocols", "grpc,websocket"],
        {"IMGBENCH_DELAY": "0.25", "IMGBENCH_COMPRESSION": "on"},
    )
    flags = child_flags(cfg, log_level_given=False)
    # Parsed again, as the child parses them, with an empty environment: the same settings.
    again = _settings(flags, {})
    for name in ("images", "delay", "compression", "protocols", "image", "output", "warmup"):
        assert again.values()[name] == cfg.values()[name], name
    assert again.compare.link == "" and not any(f.startswith("--link=") for f in flags)
    assert not any(f.startswith(("--port=", "--receiver-host=", "--log-level=")) for f in flags)
    assert "--log-level=info" in child_flags(cfg, log_level_given=True)


def test_a_bad_link_spec_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"link\.rtt"):
        _settings(["--link", "rtt=fast"], {})


#: compare/sweep arguments that are not rows of the option tables, and how they reach
#: the child (cli._over_link passes the resolved sizes itself).
OUTSIDE_THE_TABLES = {"sizes": "--sizes"}


def _subparser(command: str) -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    parser: argparse.ArgumentParser = sub.choices[command]
    return parser


@pytest.mark.parametrize("command", ["compare", "sweep"])
def test_every_compare_argument_reaches_the_lab_child_or_is_the_labs_own(command: str) -> None:
    """A new option of compare/sweep must be handed down, or be named as the lab's own
    (and refused when given: see below): nothing is silently dropped."""
    dests = {a.dest for a in _subparser(command)._actions if a.dest != "help"}
    handed_down = {o.name for o in LAB_OPTIONS} - NOT_PASSED
    unclassified = dests - handed_down - NOT_PASSED - set(OUTSIDE_THE_TABLES)
    assert not unclassified, f"{command} arguments the --link child would not get: {unclassified}"


def _non_default_argv(tmp: Path) -> dict[str, list[str]]:
    """For each option handed to the child: flags giving it a value other than its default."""
    for name in ("image.png", "cert.pem", "key.pem", "ca.pem"):
        (tmp / name).write_bytes(b"x" * 64)
    files = {n: str(tmp / f"{n}.pem") for n in ("cert", "key", "ca")}
    return {
        "images": ["--images=3"], "delay": ["--delay=0.25"], "warmup": ["--warmup=2"],
        "image": [f"--image={tmp / 'image.png'}"], "protocols": ["--protocols=grpc"],
        "in_flight": ["--in-flight=2"], "repeat": ["--repeat=2"], "ws_mode": ["--ws-mode=json"],
        "grpc_mode": ["--grpc-mode=stream"], "direction": ["--direction=push"],
        "chunk_bytes": ["--chunk-bytes=65536"], "compression": ["--compression"],
        "connect_timeout": ["--connect-timeout=5"], "image_timeout": ["--image-timeout=7"],
        "push_host": [], "push_ws_port": ["--push-ws-port=7001"],
        "push_grpc_port": ["--push-grpc-port=7002"],
        "max_message_bytes": ["--max-message-bytes=33554432"],
        "grpc_bdp_probe": ["--grpc-bdp-probe=false"],
        "grpc_lookahead_bytes": ["--grpc-lookahead-bytes=65536"],
        "grpc_max_frame_size": ["--grpc-max-frame-size=32768"],
        "ws_write_limit": ["--ws-write-limit=65536"], "ws_max_queue": ["--ws-max-queue=4"],
        "output": [f"--output={tmp / 'out'}"],
        "tcp_slow_start_after_idle": ["--tcp-slow-start-after-idle=off"],
        "tls": ["--tls"], "tls_cert": [f"--tls-cert={files['cert']}"],
        "tls_key": [f"--tls-key={files['key']}"], "tls_ca": [f"--tls-ca={files['ca']}"],
        "tls_client_auth": ["--tls-client-auth"], "log_format": ["--log-format=json"],
        "log_level": ["--log-level=debug"], "telemetry": ["--telemetry=false"],
        "grpc_instrumentation": ["--grpc-instrumentation"], "format": ["--format=json"],
        "thresholds": ["--threshold=grpc:ratio<1.2", "--threshold=websocket/binary:p90<5ms"],
        "details": ["--details"],
    }  # fmt: skip


def test_child_flags_round_trip_every_setting_with_a_non_default_value(tmp_path: Path) -> None:
    """Parsed as the child parses them (empty environment), the flags give exactly the
    parent's settings, report settings (format, thresholds, details) included."""
    given = _non_default_argv(tmp_path)
    handed_down = [o for o in LAB_OPTIONS if o.name not in NOT_PASSED]
    missing = {o.name for o in handed_down} - set(given)
    assert not missing, f"give these options a non-default value here: {missing}"
    argv = ["compare", "--link=rtt=10ms", *(f for flags in given.values() for f in flags)]
    parent = build_parser().parse_args(argv)
    cfg = config.transmitter_settings(parent, {}, options=config.COMPARE_OPTIONS)
    report = config.report_settings(parent, {})
    child = build_parser().parse_args(["compare", *child_flags(cfg, report, log_level_given=True)])
    again = config.transmitter_settings(child, {}, options=config.COMPARE_OPTIONS)
    mine = {**cfg.values(), **vars(report)}
    theirs = {**again.values(), **vars(config.report_settings(child, {}))}
    defaults = {**config.TransmitterSettings().values(), **vars(config.ReportSettings())}
    for opt in handed_down:
        assert theirs[opt.name] == mine[opt.name], opt.name
        if given[opt.name]:
            assert mine[opt.name] != defaults[opt.name], f"{opt.name}: the test gave the default"
    assert len(report.thresholds) == 2


@pytest.mark.parametrize(
    ("argv", "env", "label"),
    [
        (["--port=9000"], {}, "RECEIVER_PORT (--port)"),
        (["--receiver-host=10.0.0.1"], {}, "RECEIVER_HOST (--receiver-host)"),
        (["--grpc-port=9001"], {}, "RECEIVER_GRPC_PORT (--grpc-port)"),
        (["--http-port=9002"], {}, "RECEIVER_HTTP_PORT (--http-port)"),
        (["--external-receiver"], {}, "IMGBENCH_LINK (--link)"),
        ([], {"IMGBENCH_PUSH_HOST": "10.0.0.1"}, "IMGBENCH_PUSH_HOST (--push-host)"),
    ],
)
def test_what_cannot_apply_in_the_lab_is_refused_by_name(
    argv: list[str], env: dict[str, str], label: str
) -> None:
    args = build_parser().parse_args(["compare", "--link=rtt=10ms", *argv])
    cfg = config.transmitter_settings(args, env, options=config.COMPARE_OPTIONS)
    given = {o.name for o in config.COMPARE_OPTIONS if getattr(args, o.name) is not None}
    with pytest.raises(ConfigError) as caught:
        refuse_unusable(cfg, given)
    assert caught.value.setting == label, caught.value
    assert "cannot" in caught.value.reason


def test_the_receivers_shared_variables_are_ignored_in_the_lab_as_on_loopback() -> None:
    env = {"RECEIVER_PORT": "9000", "RECEIVER_HOST": "10.0.0.1"}
    args = build_parser().parse_args(["compare", "--link=rtt=10ms"])
    cfg = config.transmitter_settings(args, env, options=config.COMPARE_OPTIONS)
    refuse_unusable(cfg, {o.name for o in config.COMPARE_OPTIONS if getattr(args, o.name)})
