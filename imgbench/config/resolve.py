"""From flags and environment variables to typed settings, checked at start-up.

Every setting has an environment variable and a command-line flag; a flag
overrides the variable, which overrides the default. Values are parsed and
validated here, so a bad value stops the program at start-up with a
:class:`~imgbench.errors.ConfigError` that names the setting and says why
(the CLI exits 2), instead of failing half-way through a run.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from imgbench.config.option import Option, parse_bool
from imgbench.config.receiver_options import RECEIVER_OPTIONS
from imgbench.config.report_options import REPORT_OPTIONS
from imgbench.config.settings import ReceiverSettings, ReportSettings, TransmitterSettings
from imgbench.config.shared_options import RECEIVER_PORTS, SECURITY_OPTIONS
from imgbench.config.transmitter_options import RUN_OVERRIDES, TRANSMITTER_OPTIONS
from imgbench.errors import ConfigError
from imgbench.security.token import check_token


def add_arguments(
    parser: argparse.ArgumentParser,
    options: Sequence[Option],
    *,
    only_with_external: frozenset[str] = frozenset(),
) -> None:
    """Add one flag per option; defaults stay None so the env var can apply.

    ``--help`` shows each option's allowed values (or a name) as metavar, its
    environment variable and its real default; options named in
    ``only_with_external`` say they apply only with ``--external-receiver``.
    """
    for opt in options:
        # Boolean flags work bare (--serve) and with a value (--serve=false).
        extra: dict[str, Any] = {"nargs": "?", "const": "true"} if opt.parse is parse_bool else {}
        if opt.multiple:
            extra["action"] = "append"
        parser.add_argument(
            opt.flag,
            dest=opt.name,
            default=None,
            metavar=opt.metavar,
            help=(
                f"{opt.help} Only with --external-receiver (a local receiver takes free"
                f" ports). [env {opt.env}, default {_show(opt.default)} with"
                " --external-receiver]"
                if opt.name in only_with_external
                else f"{opt.help} [env {opt.env}, default {_show(opt.default)}]"
            ),
            **extra,
        )


def resolve(
    options: Sequence[Option], args: argparse.Namespace | None, environ: Mapping[str, str]
) -> dict[str, Any]:
    """Values of ``options``: flag, else environment, else default; parsed and checked."""
    values: dict[str, Any] = {}
    for opt in options:
        raw = getattr(args, opt.name, None) if args is not None else None
        if isinstance(raw, list):  # a repeatable flag: its values, comma-joined
            raw = ",".join(raw)
        if raw is None:
            raw = environ.get(opt.env)
        if raw is None:
            value = opt.default
        else:
            try:
                value = opt.parse(str(raw))
            except (ValueError, TypeError) as exc:
                raise ConfigError(opt.label, f"cannot parse {raw!r}: {exc}") from exc
        if opt.check is not None and value is not None:
            problem = opt.check(value)
            if problem:
                shown = repr(str(value) if isinstance(value, Path) else value)
                raise ConfigError(opt.label, f"{problem}, got {shown}")
        values[opt.name] = value
    return values


def _show(value: Any) -> str:
    if value == ():
        return "none"
    if isinstance(value, tuple):
        return ",".join(value)
    return "none" if value is None else str(value)


# Typed settings -------------------------------------------------------------------


def receiver_settings(
    args: argparse.Namespace | None = None, environ: Mapping[str, str] | None = None
) -> ReceiverSettings:
    cfg = ReceiverSettings(**_with_token(resolve(RECEIVER_OPTIONS, args, _env(environ))))
    if cfg.max_image_bytes > cfg.max_upload_buffer_bytes:
        raise ConfigError(
            "RECEIVER_MAX_UPLOAD_BUFFER_BYTES (--max-upload-buffer-bytes)",
            f"must be at least RECEIVER_MAX_IMAGE_BYTES ({cfg.max_image_bytes}),"
            f" got {cfg.max_upload_buffer_bytes}",
        )
    _distinct_ports(cfg.ws_port, cfg.grpc_port, cfg.http_port)
    return cfg


def _distinct_ports(*ports: int) -> None:
    """Two services on one port cannot both listen: refused before anything binds.

    ``ports`` in the order of :data:`RECEIVER_PORTS`; 0 (any free port) may repeat.
    """
    seen: dict[int, Option] = {}
    for opt, value in zip(RECEIVER_PORTS, ports, strict=True):
        if value and value in seen:
            raise ConfigError(opt.label, f"must differ from {seen[value].label}, both are {value}")
        seen.setdefault(value, opt)


def transmitter_settings(
    args: argparse.Namespace | None = None,
    environ: Mapping[str, str] | None = None,
    options: Sequence[Option] = TRANSMITTER_OPTIONS,
) -> TransmitterSettings:
    return TransmitterSettings().updated(**_with_token(resolve(options, args, _env(environ))))


def report_settings(
    args: argparse.Namespace | None = None,
    environ: Mapping[str, str] | None = None,
    options: Sequence[Option] = REPORT_OPTIONS,
) -> ReportSettings:
    """Report settings from ``options`` (the others keep their defaults)."""
    return ReportSettings(**resolve(options, args, _env(environ)))


def override_workload(base: TransmitterSettings, body: Mapping[str, Any]) -> TransmitterSettings:
    """``base`` with the workload settings in ``body`` (field name -> value) replaced.

    Values are parsed and checked like the environment variable's text; an
    unknown name or a bad value raises :class:`ConfigError` naming the setting.
    """
    allowed = {o.name: o for o in RUN_OVERRIDES}
    for key in body:
        if key not in allowed:
            raise ConfigError(
                str(key), f"not a workload setting (one of {', '.join(sorted(allowed))})"
            )
    values: dict[str, Any] = {}
    for key, given in body.items():
        text = ",".join(map(str, given)) if isinstance(given, list) else str(given)
        try:
            values.update(resolve([allowed[key]], argparse.Namespace(**{key: text}), {}))
        except ConfigError as exc:
            raise ConfigError(key, exc.reason) from exc
    return base.updated(**values)


def _with_token(values: dict[str, Any]) -> dict[str, Any]:
    """Read ``token_file`` into ``token`` (and refuse both, or an unusable token)."""
    path = values.get("token_file")
    if path is None:
        return values
    label = next(o.label for o in SECURITY_OPTIONS if o.name == "token_file")
    if values.get("token"):
        raise ConfigError(label, "give IMGBENCH_TOKEN or IMGBENCH_TOKEN_FILE, not both")
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(label, f"cannot read {path}: {exc}") from exc
    problem = check_token(token)
    if problem:
        raise ConfigError(label, f"the token in {path} {problem}")
    return {**values, "token": token}


def _env(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if environ is None else environ
