"""Every refusal of the command line is one line and an exit code, never a traceback.

Exit 2 and the setting's name for bad configuration (a port taken or repeated, an
output path that cannot be created, an image that is a directory or empty, a saved
result that is missing, corrupt or not imgbench's). Real processes, real sockets.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest


def _imgbench(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imgbench.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _one_line(proc: subprocess.CompletedProcess[str], code: int, *words: str) -> str:
    """The process exited ``code`` with exactly one stderr line containing ``words``."""
    err = proc.stderr.strip()
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert len(err.splitlines()) == 1, err
    assert err.startswith("imgbench: "), err
    for word in words:
        assert word in err, (word, err)
    return err


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port some other process listens on."""
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield int(other.getsockname()[1])


@pytest.mark.parametrize(
    ("flag", "setting"),
    [
        ("--port", "RECEIVER_PORT (--port)"),
        ("--grpc-port", "RECEIVER_GRPC_PORT (--grpc-port)"),
        ("--http-port", "RECEIVER_HTTP_PORT (--http-port)"),
    ],
)
def test_receiver_on_a_port_in_use_says_so_in_one_line(
    taken_port: int, flag: str, setting: str
) -> None:
    ports = {"--port": "0", "--grpc-port": "0", "--http-port": "0", flag: str(taken_port)}
    args = [item for pair in ports.items() for item in pair]
    proc = _imgbench("receiver", *args, "--log-level", "warning")
    _one_line(proc, 2, setting, str(taken_port), "in use")
    assert proc.stdout == ""


def test_receiver_with_two_services_on_one_port_is_refused_before_binding() -> None:
    proc = _imgbench("receiver", "--port", "18999", "--grpc-port", "0", "--http-port", "18999")
    _one_line(proc, 2, "RECEIVER_HTTP_PORT (--http-port)", "RECEIVER_PORT (--port)", "18999")


@pytest.mark.parametrize("where", ["file-parent", "proc"])
def test_compare_with_an_unusable_output_stops_before_measuring(tmp_path: Path, where: str) -> None:
    if where == "file-parent":
        blocker = tmp_path / "a-file"
        blocker.write_text("x")
        output = blocker / "results"
    else:
        output = Path("/proc/imgbench-results")  # a filesystem where nothing can be created
    proc = _imgbench("compare", "--images", "1", "--warmup", "0", "--output", str(output))
    _one_line(proc, 2, "IMGBENCH_OUTPUT (--output)", str(output))
    assert "sending" not in proc.stdout  # refused before any run


def test_compare_with_a_directory_as_image_says_directory(tmp_path: Path) -> None:
    proc = _imgbench("compare", "--image", str(tmp_path), "--output", str(tmp_path / "r"))
    _one_line(proc, 2, "IMGBENCH_IMAGE (--image)", "is a directory")


def test_compare_with_an_empty_image_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    proc = _imgbench("compare", "--image", str(empty), "--output", str(tmp_path / "r"))
    _one_line(proc, 2, "IMGBENCH_IMAGE (--image)", "is empty")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, ("does not exist",)),
        ("", ("no results.json",)),
        ('{"runs": [', ("not valid JSON", "line 1")),
        ('{"name": "another tool"}', ("not a usable imgbench result", "schema")),
        ("[1, 2, 3]", ("not an imgbench result", "list")),
        ('{"schema": "imgbench.result/1", "run_id": "x"}', ("missing field", "created_at")),
        ("[" * 100_000 + "]" * 100_000, ("not an imgbench result",)),
    ],
    ids=["missing", "no-results", "corrupt", "foreign", "list", "incomplete", "deep"],
)
def test_report_on_an_unusable_result_says_why_in_one_line(
    tmp_path: Path, content: str | None, words: tuple[str, ...]
) -> None:
    target = tmp_path / "result"
    if content is not None:
        target.mkdir()
        if content:
            (target / "results.json").write_text(content)
    proc = _imgbench("report", str(target))
    _one_line(proc, 2, *words)


def test_report_comparing_with_a_missing_second_result_says_which(tmp_path: Path) -> None:
    a = tmp_path / "a"
    a.mkdir()
    (a / "results.json").write_text(json.dumps({"schema": "other"}))
    proc = _imgbench("report", str(a), str(tmp_path / "b"))
    _one_line(proc, 2, str(a / "results.json"))


def test_transmitter_service_on_a_port_in_use_says_so_in_one_line(taken_port: int) -> None:
    proc = _imgbench(
        "transmitter", "--serve", "--api-port", str(taken_port), "--log-level", "warning"
    )
    _one_line(proc, 2, "TRANSMITTER_PORT (--api-port)", str(taken_port), "in use")
