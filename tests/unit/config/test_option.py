"""Option, its parsers and checks, value by value."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from imgbench.config import option
from imgbench.errors import ConfigError


@pytest.mark.parametrize("text", ["1", "true", "yes", "on", " TRUE ", "Yes", "ON"])
def test_parse_bool_true_spellings(text: str) -> None:
    assert option.parse_bool(text) is True


@pytest.mark.parametrize("text", ["0", "false", "no", "off", "", "  ", "FALSE", " Off "])
def test_parse_bool_false_spellings(text: str) -> None:
    assert option.parse_bool(text) is False


@pytest.mark.parametrize("text", ["maybe", "2", "y", "enable"])
def test_parse_bool_refuses_anything_else(text: str) -> None:
    expected = f"expected one of 1/0, true/false, yes/no, on/off, got {text!r}"
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        option.parse_bool(text)


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
    assert option.parse_size(text) == expected


@pytest.mark.parametrize("text", ["ten", "MiB", "12 parsecs", "1.5"])
def test_parse_size_refuses_what_is_not_a_size(text: str) -> None:
    with pytest.raises(ValueError, match=r"invalid literal|could not convert"):
        option.parse_size(text)


def test_parse_protocols() -> None:
    assert option.parse_protocols("websocket") == ("websocket",)
    assert option.parse_protocols(" GRPC , websocket ,") == ("grpc", "websocket")
    for empty in ("", " , ,"):
        with pytest.raises(ValueError, match=r"^at least one protocol is needed$"):
            option.parse_protocols(empty)
    with pytest.raises(
        ValueError, match=r"^unknown protocol 'http' \(choose from websocket, grpc\)$"
    ):
        option.parse_protocols("websocket,http")
    with pytest.raises(ValueError, match=r"^a protocol is listed twice$"):
        option.parse_protocols("grpc,websocket,grpc")


def test_parse_optional_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/someone")
    assert option.parse_optional_path("") is None
    assert option.parse_optional_path("   ") is None
    assert option.parse_optional_path("~/x.png") == Path("/home/someone/x.png")
    assert option.parse_optional_path("a/b") == Path("a/b")


def test_choice_normalises_and_names_the_choices() -> None:
    parse = option.choice("json", "console")
    assert parse(" JSON ") == "json"
    assert parse("console") == "console"
    with pytest.raises(ValueError, match=r"^choose from json, console, got 'text'$"):
        parse("text")


@pytest.mark.parametrize(
    ("value", "ok"), [(-1, False), (0, True), (1, True), (65535, True), (65536, False)]
)
def test_port_bounds_are_inclusive(value: int, ok: bool) -> None:
    problem = option.port(value)
    assert problem == (None if ok else "must be a TCP port 0..65535 (0 = any free port)")


@pytest.mark.parametrize(
    ("value", "ok"), [(0.99, False), (1, True), (2, True), (3, True), (3.01, False), (4, False)]
)
def test_between_bounds_are_inclusive(value: float, ok: bool) -> None:
    problem = option.between(1, 3)(value)
    assert problem == (None if ok else "must be within 1..3")


def test_existing_file(tmp_path: Path) -> None:
    there = tmp_path / "a.png"
    there.write_bytes(b"x")
    assert option.existing_file(None) is None
    assert option.existing_file(there) is None
    assert option.existing_file(tmp_path / "b.png") == f"file {tmp_path / 'b.png'} does not exist"
    assert option.existing_file(tmp_path) == f"{tmp_path} is a directory, not a file"
    (tmp_path / "empty.png").write_bytes(b"")
    assert option.existing_file(tmp_path / "empty.png") == (
        f"file {tmp_path / 'empty.png'} is empty: there is nothing to send"
    )


def test_writable_dir(tmp_path: Path) -> None:
    assert option.writable_dir(tmp_path / "new" / "deeper") is None  # created later
    (tmp_path / "f").write_text("x")
    assert option.writable_dir(tmp_path / "f" / "r") == (
        f"cannot write results under {tmp_path / 'f' / 'r'}: {tmp_path / 'f'} is not a directory"
    )


def test_link_spec_is_checked_and_kept_as_written() -> None:
    assert option.parse_link_text("") == ""
    assert option.parse_link_text("   ") == ""
    assert option.parse_link_text(" rtt=40ms,rate=100mbit ") == "rtt=40ms,rate=100mbit"
    with pytest.raises(ConfigError, match=r"link\.rtt"):
        option.parse_link_text("rtt=soon")


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
    assert option.grpc_frame_size(value) == expected


def test_existing_file_refuses_what_is_not_a_regular_readable_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert option.existing_file(Path("/dev/null")) == "/dev/null is not a regular file"
    there = tmp_path / "a.png"
    there.write_bytes(b"x")
    # As root every file is readable: the check is driven through os.access.
    monkeypatch.setattr(option.os, "access", lambda path, mode: mode != option.os.R_OK)
    assert option.existing_file(there) == f"file {there} is not readable"


def test_writable_dir_walks_up_to_what_exists_and_needs_write_and_search(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[tuple[str, int]] = []

    def access(path: object, mode: int) -> bool:
        asked.append((str(path), mode))
        return False

    monkeypatch.setattr(option.os, "access", access)
    target = tmp_path / "a" / "b"
    assert option.writable_dir(target) == (
        f"cannot write results under {target}: {tmp_path} is not writable"
    )
    assert asked == [(str(tmp_path), option.os.W_OK | option.os.X_OK)]
    monkeypatch.setattr(option.os, "access", lambda path, mode: True)
    assert option.writable_dir(Path("/no-such-root-dir/x")) is None  # / exists and is a dir


def test_readable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    there = tmp_path / "ca.pem"
    there.write_text("x")
    assert option.readable_file(None) is None
    assert option.readable_file(there) is None
    assert option.readable_file(tmp_path) == f"{tmp_path} is a directory, not a file"
    assert option.readable_file(tmp_path / "no") == f"file {tmp_path / 'no'} does not exist"
    monkeypatch.setattr(option.os, "access", lambda path, mode: mode != option.os.R_OK)
    assert option.readable_file(there) == f"file {there} is not readable"


def test_an_option_is_labelled_by_its_variable_and_flag_and_shows_its_value() -> None:
    plain = option.Option("max_runs", "RECEIVER_MAX_RUNS", "--max-runs", int, 1, "h")
    assert plain.label == "RECEIVER_MAX_RUNS (--max-runs)"
    assert plain.metavar == "MAX_RUNS"
    assert option.Option("a", "A", "--a", option.parse_bool, False, "h").metavar == "BOOL"
    picked = option.Option("a", "A", "--a", option.choice("x", "y"), "x", "h")
    assert picked.metavar == "{x,y}"
    assert (plain.check, plain.multiple) == (None, False)
