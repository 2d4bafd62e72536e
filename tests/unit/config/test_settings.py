"""Each setting's default is written once: in its Option; the dataclasses derive theirs."""

from __future__ import annotations

import ast
import dataclasses
import inspect
from pathlib import Path

import pytest

from imgbench import config
from imgbench.config import settings
from imgbench.config.option import Option
from imgbench.config.receiver_options import RECEIVER_OPTIONS
from imgbench.config.report_options import REPORT_OPTIONS
from imgbench.config.shared_options import OBSERVE_OPTIONS, SECURITY_OPTIONS, TRANSPORT_OPTIONS
from imgbench.config.transmitter_options import (
    COMPARE_ONLY_OPTIONS,
    COMPARE_OPTIONS,
    OUTPUT,
    PUSH_OPTIONS,
    SERVICE_OPTIONS,
    TARGET_OPTIONS,
    TRANSMITTER_OPTIONS,
    WORKLOAD_OPTIONS,
)

#: Every settings class with the options its fields come from.
CASES = [
    (settings.ObserveSettings, OBSERVE_OPTIONS),
    (settings.TransportSettings, TRANSPORT_OPTIONS),
    (settings.SecuritySettings, SECURITY_OPTIONS),
    (settings.ReceiverSettings, RECEIVER_OPTIONS),
    (settings.TargetSettings, TARGET_OPTIONS),
    (settings.WorkloadSettings, WORKLOAD_OPTIONS),
    (settings.PushSettings, PUSH_OPTIONS),
    (settings.ServiceSettings, SERVICE_OPTIONS),
    (settings.CompareSettings, COMPARE_ONLY_OPTIONS),
    (settings.ReportSettings, REPORT_OPTIONS),
]
#: The transmitter's parts, by field name.
PARTS = {
    "observe": settings.ObserveSettings,
    "transport": settings.TransportSettings,
    "security": settings.SecuritySettings,
    "target": settings.TargetSettings,
    "workload": settings.WorkloadSettings,
    "push": settings.PushSettings,
    "service": settings.ServiceSettings,
    "compare": settings.CompareSettings,
}


def _settings_classes() -> set[type]:
    return {
        value
        for value in vars(settings).values()
        if isinstance(value, type)
        and dataclasses.is_dataclass(value)
        and value.__module__ == settings.__name__
    }


def test_every_settings_class_is_checked() -> None:
    assert _settings_classes() == {cls for cls, _ in CASES} | {settings.TransmitterSettings}


@pytest.mark.parametrize(("cls", "options"), CASES, ids=lambda c: getattr(c, "__name__", ""))
def test_every_field_has_one_option_with_the_same_default(
    cls: type, options: tuple[Option, ...]
) -> None:
    by_name: dict[str, list[Option]] = {}
    for opt in options:
        by_name.setdefault(opt.name, []).append(opt)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    assert set(fields) == set(by_name), "a field without an option, or an option without a field"
    for name, field in fields.items():
        defaults = {repr(o.default) for o in by_name[name]}
        assert defaults == {repr(field.default)}, name


def test_the_transmitter_is_its_parts_and_every_option_of_both_commands() -> None:
    fields = {f.name: f for f in dataclasses.fields(settings.TransmitterSettings)}
    assert {n: f.type for n, f in fields.items() if n != "output"} == {
        n: cls.__name__ for n, cls in PARTS.items()
    }
    assert fields["output"].default == OUTPUT.default
    values = settings.TransmitterSettings().values()
    options = {o.name: o for o in (*TRANSMITTER_OPTIONS, *COMPARE_OPTIONS)}
    assert list(values) == list(dict.fromkeys(values))  # no name in two parts
    assert set(values) == set(options)
    for name, value in values.items():
        assert repr(value) == repr(options[name].default), name


def test_no_settings_dataclass_writes_a_literal_default() -> None:
    """A field default is a lookup in the option table or a part's own defaults,
    never a second literal."""
    tree = ast.parse(inspect.getsource(settings))
    classes = {cls.__name__ for cls in _settings_classes()}
    parts = {cls.__name__ for cls in PARTS.values()}
    seen = set()
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name in classes:
            seen.add(node.name)
            for stmt in node.body:
                if not isinstance(stmt, ast.AnnAssign):
                    continue
                assert stmt.value is not None, ast.unparse(stmt)
                default = stmt.value
                if isinstance(default, ast.Call):
                    assert ast.unparse(default.func) == "field", ast.unparse(stmt)
                    keywords = {k.arg: k.value for k in default.keywords}
                    if "default_factory" in keywords:  # a part: field(default_factory=Part)
                        assert ast.unparse(keywords["default_factory"]) in parts
                        assert ast.unparse(stmt.annotation) in parts
                        continue
                    default = keywords["default"]  # e.g. field(default=..., repr=False)
                assert isinstance(default, ast.Subscript), ast.unparse(stmt)
                assert isinstance(default.value, ast.Name)
                assert default.value.id.startswith("_")
                assert ast.literal_eval(default.slice) == ast.unparse(stmt.target)
    assert seen == classes


def test_conflicting_defaults_for_one_name_are_refused() -> None:
    a = Option("x", "X", "--x", int, 1, "x")
    b = Option("x", "X2", "--x2", int, 2, "x")
    assert settings._defaults(a, a) == {"x": 1}
    with pytest.raises(AssertionError, match=r"^two defaults for x$"):
        settings._defaults(a, b)


def test_transport_settings_map_to_grpcio_arguments_and_keep_its_defaults() -> None:
    assert settings.TransportSettings().grpc_options() == [("grpc.http2.bdp_probe", 1)]
    tuned = settings.TransportSettings(
        grpc_bdp_probe=False, grpc_lookahead_bytes=4 << 20, grpc_max_frame_size=1 << 20
    )
    assert tuned.grpc_options() == [
        ("grpc.http2.bdp_probe", 0),
        ("grpc.http2.lookahead_bytes", 4 << 20),
        ("grpc.http2.max_frame_size", 1 << 20),
    ]
    # The receiver applies the same settings.
    assert settings.ReceiverSettings(grpc_lookahead_bytes=1 << 20).grpc_options() == [
        ("grpc.http2.bdp_probe", 1),
        ("grpc.http2.lookahead_bytes", 1 << 20),
    ]


def test_a_frame_size_outside_http2s_range_is_refused() -> None:
    from imgbench.errors import ConfigError

    with pytest.raises(ConfigError, match="IMGBENCH_GRPC_MAX_FRAME_SIZE"):
        config.transmitter_settings(environ={"IMGBENCH_GRPC_MAX_FRAME_SIZE": "1000"})


# The transmitter's parts, addressed by setting name ---------------------------------


def test_updated_puts_each_setting_in_its_part_and_refuses_unknown_names() -> None:
    base = settings.TransmitterSettings()
    new = base.updated(
        images=3, ws_port=1, telemetry=False, output=Path("o"), link="rtt=1ms", token="t" * 16
    )
    assert new.workload == dataclasses.replace(base.workload, images=3)
    assert new.target == dataclasses.replace(base.target, ws_port=1)
    assert new.observe == dataclasses.replace(base.observe, telemetry=False)
    assert new.compare == dataclasses.replace(base.compare, link="rtt=1ms")
    assert new.security == dataclasses.replace(base.security, token="t" * 16)
    assert new.output == Path("o")
    assert (new.transport, new.push, new.service) == (base.transport, base.push, base.service)
    assert base.updated() == base
    with pytest.raises(TypeError, match=r"^not a transmitter setting: nope, zilch$"):
        base.updated(zilch=1, images=2, nope=0)


def test_values_flatten_the_parts_in_order() -> None:
    s = settings.TransmitterSettings().updated(images=4, serve=True)
    values = s.values()
    assert values["images"] == 4 and values["serve"] is True
    assert list(values)[:4] == ["log_format", "log_level", "telemetry", "grpc_instrumentation"]
    assert len(values) == sum(len(dataclasses.fields(p)) for p in PARTS.values()) + 1


def test_public_settings_are_json_friendly() -> None:
    s = config.transmitter_settings(environ={"IMGBENCH_PROTOCOLS": "grpc"})
    public = s.public()
    assert public["protocols"] == ["grpc"]
    assert public["output"] == "results" and public["image"] is None
    assert public["images"] == 10 and public["delay"] == 1.0
    # Only the settings that apply: the service-mode ones only in service mode.
    service_only = {o.name for o in SERVICE_OPTIONS}
    assert set(public) == set(s.values()) - service_only
    served = config.transmitter_settings(environ={"TRANSMITTER_SERVE": "1"}).public()
    assert set(served) == set(s.values())
    assert served["api_port"] == 9102 and served["serve"] is True
    with_image = s.updated(image=Path("/x/y.png")).public()
    assert with_image["image"] == "/x/y.png"
    # Whether a token and TLS were used, never the token itself.
    assert (public["token"], public["tls"]) == (False, False)
    secured = s.updated(token="a-token-of-enough-length", tls_ca=Path("/ca.pem")).public()
    assert (secured["token"], secured["tls"], secured["tls_ca"]) == (True, True, "/ca.pem")
