"""The pure parts of ``--link``: what the child inherits, and the flags it gets."""

from __future__ import annotations

import argparse

import pytest

from imgbench import config
from imgbench.errors import ConfigError
from transmitter.compare import child_env
from transmitter.linked import child_flags


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
    config.add_arguments(parser, config.COMPARE_OPTIONS)
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
