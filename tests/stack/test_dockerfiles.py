"""The Dockerfiles, checked without a Docker engine.

Static checks read both Dockerfiles: identical cacheable build stages,
dependencies installed before the code is copied, a non-root runtime with a
``/healthz`` HEALTHCHECK, SIGTERM as stop signal, and only files the
``.dockerignore`` allow-list lets into the build context.

The install test then does what ``docker build`` would do, as far as a machine
without Docker can: it copies the build context the way the ``COPY`` lines do,
runs the build stage's ``RUN`` commands exactly as written (``sh -ec``) with the
stage's ``ENV`` (only ``VIRTUAL_ENV`` is pointed into a temporary directory),
and starts each service with its image's ``CMD`` and ``ENV`` until the image's
own ``HEALTHCHECK`` command passes; the transmitter then completes a comparison
against the receiver, and both stop cleanly on the ``STOPSIGNAL``. It downloads
the dependencies from PyPI (as the image build does); set
``IMGBENCH_SKIP_INSTALL_TEST=1`` to skip it offline.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from helpers.services import free_ports

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("receiver", "transmitter")
EXPECTED_CMD = {
    "receiver": ["imgbench", "receiver"],
    "transmitter": ["imgbench", "transmitter", "--serve"],
}
PORT_VARIABLE = {"receiver": "RECEIVER_HTTP_PORT", "transmitter": "TRANSMITTER_PORT"}


@dataclass
class Stage:
    base: str
    name: str = ""
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    copies: list[tuple[list[str], str]] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    instructions: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Dockerfile:
    args: dict[str, str]
    stages: list[Stage]

    def instruction(self, stage: Stage, keyword: str) -> str:
        values = [v for k, v in stage.instructions if k == keyword]
        assert len(values) == 1, f"{keyword} appears {len(values)} times"
        return values[0]


def logical_lines(text: str) -> list[str]:
    """Instructions with continuation lines joined and comments dropped."""
    lines: list[str] = []
    current = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or not stripped:
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append(current + stripped)
        current = ""
    assert not current, "dangling line continuation"
    return lines


def parse_env(value: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in shlex.split(value))


def parse(path: Path) -> Dockerfile:
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical_lines(path.read_text()):
        keyword, _, value = line.partition(" ")
        keyword, value = keyword.upper(), value.strip()
        if keyword == "FROM":
            words = value.split()
            stage = Stage(base=words[0], name=words[2] if len(words) == 3 else "")
            stages.append(stage)
            continue
        if not stages:
            assert keyword == "ARG", f"{keyword} before FROM"
            name, _, default = value.partition("=")
            args[name] = default
            continue
        stage = stages[-1]
        stage.instructions.append((keyword, value))
        if keyword == "ENV":
            stage.env.update(parse_env(value))
        elif keyword == "WORKDIR":
            stage.workdir = value
        elif keyword == "COPY" and not value.startswith("--from"):
            *sources, dest = value.split()
            stage.copies.append((sources, dest))
        elif keyword == "RUN":
            stage.runs.append(value)
    return Dockerfile(args, stages)


@pytest.fixture(scope="module", params=SERVICES)
def service(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def dockerfile(service: str) -> Dockerfile:
    return parse(ROOT / service / "Dockerfile")


def runtime(service: str) -> Stage:
    return dockerfile(service).stages[-1]


def build_stage(service: str) -> Stage:
    (stage,) = [s for s in dockerfile(service).stages if s.name == "build"]
    return stage


# ---- static checks -------------------------------------------------------------------------


def test_build_stages_are_identical() -> None:
    """Same instructions, same context files: the two images share the cached layers."""
    a, b = (build_stage(s) for s in SERVICES)
    assert a.instructions == b.instructions
    assert dockerfile(SERVICES[0]).args == dockerfile(SERVICES[1]).args


def test_slim_python_base(service: str) -> None:
    file = dockerfile(service)
    assert file.args["PYTHON_IMAGE"].startswith("python:3.11-slim")
    assert all(stage.base == "${PYTHON_IMAGE}" for stage in file.stages)


def test_dependencies_are_installed_before_the_code_is_copied(service: str) -> None:
    order = [(k, v) for k, v in build_stage(service).instructions if k in {"COPY", "RUN"}]
    copied_code = [i for i, (k, v) in enumerate(order) if k == "COPY" and "imgbench" in v]
    dependency_run = [
        i for i, (k, v) in enumerate(order) if k == "RUN" and "requirements.txt" in v and "-r" in v
    ]
    assert copied_code and dependency_run, order
    assert dependency_run[0] < copied_code[0]
    # That layer sees pyproject.toml only.
    before = [v for k, v in order[: dependency_run[0]] if k == "COPY"]
    assert before == ["pyproject.toml ./"], before
    # The project itself is then installed without touching the dependencies.
    assert any("--no-deps ." in v and re.search(r'pip"? check', v) for k, v in order if k == "RUN")
    assert not any("[test]" in v or "[report]" in v for k, v in order), "extras in the image"


def test_runtime_stage(service: str) -> None:
    file = dockerfile(service)
    stage = runtime(service)
    user = file.instruction(stage, "USER").split(":")[0]
    assert user not in {"0", "root"}, "the service must not run as root"
    assert file.instruction(stage, "STOPSIGNAL") == "SIGTERM"
    assert json.loads(file.instruction(stage, "CMD")) == EXPECTED_CMD[service]
    # Only the virtual environment comes from the build stage; nothing is installed here.
    runs = [v for k, v in stage.instructions if k == "RUN"]
    assert all(v.startswith("useradd ") for v in runs), runs
    copies = [v for k, v in stage.instructions if k == "COPY"]
    assert copies == ["--from=build /opt/imgbench /opt/imgbench"]
    bind = "RECEIVER_BIND" if service == "receiver" else "TRANSMITTER_BIND"
    assert stage.env[bind] == "0.0.0.0"


def healthcheck_argv(service: str) -> tuple[str, list[str]]:
    """``(options, exec-form command)`` of the runtime stage's HEALTHCHECK."""
    value = dockerfile(service).instruction(runtime(service), "HEALTHCHECK")
    options, _, command = value.partition(" CMD ")
    argv = json.loads(command)
    assert isinstance(argv, list), "HEALTHCHECK must use the exec form"
    return options, argv


def test_healthcheck_probes_healthz_with_python(service: str) -> None:
    options, argv = healthcheck_argv(service)
    assert argv[:2] == ["python", "-c"], "the slim image has no curl: use python"
    assert "/healthz" in argv[2] and PORT_VARIABLE[service] in argv[2]
    assert "--interval=" in options and "--timeout=" in options


def test_exposed_ports_are_the_ones_compose_publishes(service: str) -> None:
    exposed = {int(p) for p in dockerfile(service).instruction(runtime(service), "EXPOSE").split()}
    compose = YAML(typ="safe").load((ROOT / "docker-compose.yml").read_text())
    published = {int(p.rsplit(":", 1)[1]) for p in compose["services"][service]["ports"]}
    assert exposed == published


def dockerignore_allows() -> set[str]:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", ".dockerignore should be an allow-list"
    return {line[1:].rstrip("/") for line in lines if line.startswith("!")}


def test_context_holds_exactly_what_the_build_copies(service: str) -> None:
    copied = {src.rstrip("/") for sources, _ in build_stage(service).copies for src in sources}
    assert copied == dockerignore_allows()
    for path in copied:
        assert (ROOT / path).exists(), f"COPY {path}: missing"


# ---- installing and starting the services as the images do ------------------------------------


def copy_context(stage: Stage, dest: Path) -> None:
    """Copy what the stage's COPY lines copy, with Docker's rules, relative to ``dest``."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", "*.egg-info")
    for sources, target in stage.copies:
        to = dest / target
        for src in sources:
            origin = ROOT / src
            if origin.is_dir():  # a directory's contents go into the target
                shutil.copytree(origin, to, ignore=ignore, dirs_exist_ok=True)
            elif target.endswith("/"):
                to.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, to / origin.name)
            else:
                shutil.copy2(origin, to)


def image_env(stage: Stage, venv: Path, **overrides: str | int) -> dict[str, str]:
    """The stage's ENV on top of a minimal environment, with the venv moved to ``venv``."""
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ}
    for key, value in stage.env.items():
        env[key] = value.replace("/opt/imgbench", str(venv)).replace("$PATH", env["PATH"])
    env.update({k: str(v) for k, v in overrides.items()})
    return env


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


@pytest.mark.skipif(
    os.environ.get("IMGBENCH_SKIP_INSTALL_TEST") == "1", reason="IMGBENCH_SKIP_INSTALL_TEST=1"
)
def test_install_as_the_dockerfile_does_and_start_with_cmd(tmp_path: Path) -> None:
    build = build_stage("receiver")
    src = tmp_path / "src"  # the build stage's WORKDIR
    src.mkdir()
    copy_context(build, src)
    venv = tmp_path / "opt-imgbench"
    # `python` in the RUN lines is the base image's interpreter: this test's Python 3.11+.
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (shim / "python").chmod(0o755)
    env = image_env(build, venv)
    env["PATH"] = f"{shim}:{env['PATH']}"
    assert env["VIRTUAL_ENV"] == str(venv)
    for command in build.runs:
        proc = subprocess.run(
            ["sh", "-ec", command], cwd=src, env=env, capture_output=True, text=True, timeout=900
        )
        assert proc.returncode == 0, f"RUN {command}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert (venv / "bin" / "imgbench").is_file(), "the console script was not installed"

    ws, grpc, http, api = free_ports(4)
    ports = {"RECEIVER_PORT": ws, "RECEIVER_GRPC_PORT": grpc, "RECEIVER_HTTP_PORT": http}
    home = tmp_path / "home"
    home.mkdir()
    procs: dict[str, subprocess.Popen[bytes]] = {}
    envs = {
        # Loopback instead of the image's 0.0.0.0: nothing else needs to reach them here.
        "receiver": image_env(runtime("receiver"), venv, RECEIVER_BIND="127.0.0.1", **ports),
        "transmitter": image_env(
            runtime("transmitter"),
            venv,
            TRANSMITTER_BIND="127.0.0.1",
            TRANSMITTER_PORT=api,
            IMGBENCH_IMAGES=2,
            IMGBENCH_DELAY=0,
            **ports,
        ),
    }
    try:
        for service in SERVICES:
            cmd = json.loads(dockerfile(service).instruction(runtime(service), "CMD"))
            log = (tmp_path / f"{service}.log").open("wb")
            procs[service] = subprocess.Popen(
                cmd, cwd=home, env=envs[service], stdout=log, stderr=subprocess.STDOUT
            )
            _, probe = healthcheck_argv(service)
            deadline = time.monotonic() + 30
            while True:
                assert procs[service].poll() is None, (tmp_path / f"{service}.log").read_text()
                if subprocess.run(probe, env=envs[service], capture_output=True).returncode == 0:
                    break
                assert time.monotonic() < deadline, f"{service}: HEALTHCHECK never passed"
                time.sleep(0.3)

        deadline = time.monotonic() + 60
        latest: Any = None
        while time.monotonic() < deadline:
            try:
                latest = get(f"http://127.0.0.1:{api}/runs/latest")
                break
            except OSError:  # 404 (HTTPError is an OSError) until the first run ends
                time.sleep(0.3)
        assert latest and latest.get("status") == "ok", latest
        # The transmitter wrote its result under its working directory.
        assert list(home.glob("results/*/results.json")), "no result written"

        stop = getattr(
            signal, dockerfile("receiver").instruction(runtime("receiver"), "STOPSIGNAL")
        )
        for service in reversed(SERVICES):
            procs[service].send_signal(stop)
            assert procs[service].wait(timeout=15) == 0, (tmp_path / f"{service}.log").read_text()
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
