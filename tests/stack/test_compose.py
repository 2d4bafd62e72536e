"""Offline checks of the docker compose stack (there is no Docker engine in CI).

* docker-compose.yml against the Compose Specification's JSON schema
  (``check-jsonschema --builtin-schema vendor.compose-spec``) and through
  Debian's ``docker-compose config -q``, with the values of .env.example and
  with no .env at all (every variable has a default);
* ``promtool check config`` on prometheus/prometheus.yml;
* the wiring a schema cannot see: every variable documented with a working
  default, every mounted file present, healthchecks and health-gated start-up,
  Prometheus targets that are the compose services and ports, OTLP by the
  standard variables.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from helpers.external_tools import require_tool

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
PROMETHEUS_CONFIG = ROOT / "prometheus" / "prometheus.yml"
COMPOSE_MARKER = "# ---- docker compose stack ----"
SERVICES = {"receiver", "transmitter", "prometheus", "grafana", "jaeger"}
#: Service -> (job name, container HTTP port the Prometheus job scrapes).
SCRAPED = {"receiver": ("imgbench-receiver", 9101), "transmitter": ("imgbench-transmitter", 9102)}
VARIABLE = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def load_yaml(path: Path) -> Any:
    return YAML(typ="safe").load(path.read_text())


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = load_yaml(COMPOSE)
    return data


def env_example() -> tuple[dict[str, str], dict[str, str]]:
    """``(all variables, compose-only variables)`` of .env.example, name -> value."""
    everything: dict[str, str] = {}
    compose_only: dict[str, str] = {}
    text = ENV_EXAMPLE.read_text()
    assert COMPOSE_MARKER in text, f"{ENV_EXAMPLE} lacks the line {COMPOSE_MARKER!r}"
    below = False
    for line in text.splitlines():
        below = below or line.strip() == COMPOSE_MARKER
        match = re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match:
            everything[match[1]] = match[2]
            if below:
                compose_only[match[1]] = match[2]
    return everything, compose_only


def compose_text() -> str:
    """docker-compose.yml without its comment lines."""
    lines = COMPOSE.read_text().splitlines()
    return "\n".join(line for line in lines if not line.lstrip().startswith("#"))


def clean_env(**extra: str) -> dict[str, str]:
    """PATH and HOME only: no variable of the test's environment leaks into compose."""
    env = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
    env.update(extra)
    return env


# ---- external validators ---------------------------------------------------------------


def test_compose_file_matches_the_compose_specification() -> None:
    tool = require_tool("check-jsonschema")
    proc = subprocess.run(
        [tool, "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("env_file", ["env-example", "no-env"])
def test_docker_compose_config_accepts_it(tmp_path: Path, env_file: str) -> None:
    tool = require_tool("docker-compose")
    if env_file == "env-example":
        path = ENV_EXAMPLE
    else:
        path = tmp_path / "empty.env"
        path.write_text("")
    proc = subprocess.run(
        [
            tool,
            "--project-directory",
            str(ROOT),
            "-f",
            str(COMPOSE),
            "--env-file",
            str(path),
            "config",
            "-q",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=clean_env(),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # An unset variable without a default is only a warning for docker-compose.
    assert "WARNING" not in proc.stderr, proc.stderr


def test_promtool_accepts_the_prometheus_config() -> None:
    tool = require_tool("promtool")
    proc = subprocess.run(
        [tool, "check", "config", str(PROMETHEUS_CONFIG)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout + proc.stderr


# ---- variables ----------------------------------------------------------------------


def test_every_variable_has_a_default_and_is_documented() -> None:
    documented, _ = env_example()
    used = VARIABLE.findall(compose_text())
    assert used, "docker-compose.yml uses no variables"
    for name, default in used:
        # An empty default (${NAME:-}) is a default: e.g. no token.
        assert f"${{{name}}}" not in compose_text(), (
            f"${{{name}}} has no default: compose must work without .env"
        )
        assert name in documented, f"{name} is not in .env.example"
        if documented[name]:
            # cp .env.example .env must not change what a bare `docker compose up` does.
            assert documented[name] == default, f"{name}: .env.example {documented[name]!r}"


def test_compose_only_variables_are_used_and_commented() -> None:
    _, compose_only = env_example()
    assert compose_only, "no variables below the compose marker"
    used = {name for name, _ in VARIABLE.findall(compose_text())}
    assert set(compose_only) <= used, f"unused: {sorted(set(compose_only) - used)}"
    lines = ENV_EXAMPLE.read_text().splitlines()
    for index, line in enumerate(lines):
        name = line.split("=", 1)[0]
        if name in compose_only:
            above = lines[:index]
            while above and re.match(r"^[A-Z][A-Z0-9_]*=", above[-1]):
                above.pop()  # a group of variables may share one comment
            assert above and above[-1].startswith("# "), f"{name} has no comment"
            assert compose_only[name], f"{name} has no value"


# ---- services -------------------------------------------------------------------------


def test_services(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == SERVICES


def test_every_service_has_a_healthcheck(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        check = service.get("healthcheck")
        assert check and check["test"][0] in {"CMD", "CMD-SHELL"}, f"{name} has no healthcheck"
        assert not check.get("disable"), name


def test_start_up_waits_for_health(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on must state conditions"
        for other, how in depends.items():
            assert other in services and how == {"condition": "service_healthy"}, (name, other)
    # The first comparison is worth nothing unless it can be received, scraped and traced.
    assert set(services["transmitter"]["depends_on"]) >= {"receiver", "prometheus", "jaeger"}


def test_healthchecks_probe_the_service_ports(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, (_, port) in SCRAPED.items():
        probe = " ".join(services[name]["healthcheck"]["test"])
        assert f"127.0.0.1:{port}/healthz" in probe, name


def test_services_listen_where_they_are_scraped(compose: dict[str, Any]) -> None:
    services = compose["services"]
    config = load_yaml(PROMETHEUS_CONFIG)
    targets = {
        c["job_name"]: [t for sc in c["static_configs"] for t in sc["targets"]]
        for c in config["scrape_configs"]
    }
    for name, (job, port) in SCRAPED.items():
        assert targets[job] == [f"{name}:{port}"], job
        env = services[name]["environment"]
        listen = "RECEIVER_HTTP_PORT" if name == "receiver" else "TRANSMITTER_PORT"
        assert str(env[listen]) == str(port), f"{name} listens on {env[listen]}"
        bind = "RECEIVER_BIND" if name == "receiver" else "TRANSMITTER_BIND"
        assert env[bind] == "0.0.0.0", f"{name} must listen on all interfaces in a container"
    transmitter = services["transmitter"]["environment"]
    receiver = services["receiver"]["environment"]
    assert transmitter["RECEIVER_HOST"] == "receiver"
    for key in ("RECEIVER_PORT", "RECEIVER_GRPC_PORT", "RECEIVER_HTTP_PORT"):
        assert str(transmitter[key]) == str(receiver[key]), key
    assert str(transmitter["TRANSMITTER_SERVE"]).lower() in {"1", "true"}


def test_published_ports_reach_the_container_ports(compose: dict[str, Any]) -> None:
    services = compose["services"]
    receiver_env = services["receiver"]["environment"]
    container_ports = {
        "receiver": {
            int(receiver_env[k])
            for k in ("RECEIVER_PORT", "RECEIVER_GRPC_PORT", "RECEIVER_HTTP_PORT")
        },
        "transmitter": {int(services["transmitter"]["environment"]["TRANSMITTER_PORT"])},
        "prometheus": {9090},
        "grafana": {3000},
        "jaeger": {16686, 4317, 4318},
    }
    for name, service in services.items():
        published = set()
        for spec in service.get("ports", []):
            assert spec.startswith("${PUBLISH_ADDRESS:-127.0.0.1}:"), f"{name}: {spec}"
            published.add(int(spec.rsplit(":", 1)[1]))
        assert published == container_ports[name], name


def test_otlp_by_standard_variables(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, (job, _) in SCRAPED.items():
        env = services[name]["environment"]
        # OTLP/HTTP to Jaeger's 4318 (the exporter appends /v1/traces to this base).
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4318", name
        assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf", name
        assert env["OTEL_SERVICE_NAME"] == job, name
    assert services["jaeger"]["image"].startswith("${JAEGER_IMAGE:-jaegertracing/jaeger:2.")


def test_prometheus_flags(compose: dict[str, Any]) -> None:
    prometheus = compose["services"]["prometheus"]
    command = prometheus["command"]
    assert "--enable-feature=exemplar-storage" in command
    config = next(c.split("=", 1)[1] for c in command if c.startswith("--config.file="))
    mounts = dict(v.split(":")[1::-1] for v in prometheus["volumes"])  # target -> source
    assert (ROOT / mounts[config]).resolve() == PROMETHEUS_CONFIG.resolve()


def test_bind_mounts_exist_and_are_read_only(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source, _, *options = volume.split(":")
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
                assert options == ["ro"], f"{name}: {source} should be mounted read-only"


def test_named_volumes_only_for_data_that_should_survive(compose: dict[str, Any]) -> None:
    assert set(compose.get("volumes") or {}) == {"prometheus-data"}
    used = {
        v.split(":")[0]
        for s in compose["services"].values()
        for v in s.get("volumes", [])
        if not v.startswith(".")
    }
    assert used == {"prometheus-data"}


def test_services_build_from_the_repository_root(compose: dict[str, Any]) -> None:
    for name in SCRAPED:
        build = compose["services"][name]["build"]
        assert build["context"] == "."
        assert (ROOT / build["dockerfile"]) == ROOT / name / "Dockerfile"
