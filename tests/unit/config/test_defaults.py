"""Each setting's default is written once: in its Option; the dataclasses derive theirs."""

from __future__ import annotations

import ast
import dataclasses
import inspect

import pytest

from imgbench.config import settings
from imgbench.config.settings import (
    COMPARE_OPTIONS,
    LOG_OPTIONS,
    RECEIVER_OPTIONS,
    TRANSMITTER_OPTIONS,
    ObserveSettings,
    Option,
    ReceiverSettings,
    TransmitterSettings,
)

CASES = [
    (ObserveSettings, LOG_OPTIONS),
    (ReceiverSettings, RECEIVER_OPTIONS),
    (TransmitterSettings, (*TRANSMITTER_OPTIONS, *COMPARE_OPTIONS)),
]


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


def test_no_settings_dataclass_writes_a_literal_default() -> None:
    """A field default must be a lookup in the option table, never a second literal."""
    tree = ast.parse(inspect.getsource(settings))
    classes = {"ObserveSettings", "ReceiverSettings", "TransmitterSettings"}
    seen = set()
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name in classes:
            seen.add(node.name)
            for stmt in node.body:
                if isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
                    assert isinstance(stmt.value, ast.Subscript), ast.unparse(stmt)
                    assert isinstance(stmt.value.value, ast.Name)
                    assert stmt.value.value.id.startswith("_")
                    assert ast.literal_eval(stmt.value.slice) == ast.unparse(stmt.target)
    assert seen == classes


def test_conflicting_defaults_for_one_name_are_refused() -> None:
    a = Option("x", "X", "--x", int, 1, "x")
    b = Option("x", "X2", "--x2", int, 2, "x")
    assert settings._defaults(a, a) == {"x": 1}
    with pytest.raises(AssertionError, match="two defaults for x"):
        settings._defaults(a, b)


def test_transport_settings_map_to_grpcio_arguments_and_keep_its_defaults() -> None:
    from imgbench.config.settings import TransmitterSettings

    assert TransmitterSettings().grpc_options() == [("grpc.http2.bdp_probe", 1)]
    tuned = TransmitterSettings(
        grpc_bdp_probe=False, grpc_lookahead_bytes=4 << 20, grpc_max_frame_size=1 << 20
    )
    assert tuned.grpc_options() == [
        ("grpc.http2.bdp_probe", 0),
        ("grpc.http2.lookahead_bytes", 4 << 20),
        ("grpc.http2.max_frame_size", 1 << 20),
    ]


def test_a_frame_size_outside_http2s_range_is_refused() -> None:
    import pytest

    from imgbench.config import settings
    from imgbench.errors import ConfigError

    with pytest.raises(ConfigError, match="IMGBENCH_GRPC_MAX_FRAME_SIZE"):
        settings.transmitter_settings(environ={"IMGBENCH_GRPC_MAX_FRAME_SIZE": "1000"})
