"""Every workload variable of .env.example reaches the container it applies to.

The README promises that the settings in ``.env`` apply to the compose containers as
they do to the commands. For each variable above the compose marker of
.env.example, the services that read it (the receiver's and the transmitter's
settings tables) must get it in docker-compose.yml as ``${NAME:-<same default>}``,
unless compose fixes it on purpose (addresses, ports inside the network, service
mode, OTLP endpoint) or it names a host path that does not exist in a container.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from imgbench import config

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
COMPOSE_MARKER = "# ---- docker compose stack ----"
READERS = {
    "receiver": {o.env for o in config.RECEIVER_OPTIONS},
    "transmitter": {o.env for o in config.TRANSMITTER_OPTIONS},
}
#: Set by compose to a fixed value, whatever .env says (docker-compose.yml's header).
FIXED = {
    "RECEIVER_BIND": "listen on the container network",
    "TRANSMITTER_BIND": "listen on the container network",
    "RECEIVER_HOST": "the receiver's compose service name",
    "RECEIVER_PORT": "default port inside the network; .env's value is the host port",
    "RECEIVER_GRPC_PORT": "default port inside the network; .env's value is the host port",
    "RECEIVER_HTTP_PORT": "default port inside the network; .env's value is the host port",
    "TRANSMITTER_PORT": "default port inside the network; .env's value is the host port",
    "TRANSMITTER_SERVE": "compose runs the service",
    "RUN_INTERVAL_SECONDS": "compose's own COMPOSE_RUN_INTERVAL_SECONDS",
    "OTEL_EXPORTER_OTLP_ENDPOINT": "Jaeger in the compose network",
    "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf, to Jaeger's OTLP/HTTP receiver",
    "IMGBENCH_PUSH_HOST": "empty: the transmitter container's own address on the network",
}
#: Host paths: meaningless inside a container, so not passed.
HOST_PATHS = {"IMGBENCH_IMAGE", "IMGBENCH_OUTPUT", "RECEIVER_SAVE_DIR", "IMGBENCH_TLS_CERT",
              "IMGBENCH_TLS_KEY", "IMGBENCH_TLS_CA", "IMGBENCH_TOKEN_FILE"}  # fmt: skip
#: TLS is not taken from .env: docker-compose.tls.yml (the opt-in TLS variant) sets
#: IMGBENCH_TLS and the certificate paths inside its volume (tests/stack/test_compose_tls.py);
#: mutual TLS is not offered there. The token is passed (/healthz and /metrics stay open).
NO_TLS_IN_COMPOSE = {"IMGBENCH_TLS", "IMGBENCH_TLS_CLIENT_AUTH"}
#: Read by `imgbench compare` only, which compose does not run.
COMPARE_ONLY = {"IMGBENCH_EXTERNAL_RECEIVER", "IMGBENCH_LINK", "IMGBENCH_TCP_SLOW_START_AFTER_IDLE",
                "IMGBENCH_FORMAT", "IMGBENCH_THRESHOLDS", "IMGBENCH_DETAILS",
                "IMGBENCH_SWEEP_SIZES"}  # fmt: skip


def workload_variables() -> dict[str, str]:
    """Name -> documented value, of the variables above the compose marker."""
    out = {}
    for line in ENV_EXAMPLE.read_text().split(COMPOSE_MARKER)[0].splitlines():
        match = re.match(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match:
            out[match[1]] = match[2]
    assert len(out) > 30, out
    return out


@pytest.fixture(scope="module")
def environments() -> dict[str, dict[str, Any]]:
    services = YAML(typ="safe").load(COMPOSE.read_text())["services"]
    return {side: services[side]["environment"] for side in READERS}


def test_every_variable_is_classified() -> None:
    known = READERS["receiver"] | READERS["transmitter"] | set(FIXED) | HOST_PATHS | COMPARE_ONLY
    unknown = set(workload_variables()) - known - {"OTEL_SERVICE_NAME"}
    assert not unknown, f".env.example variables nobody reads: {sorted(unknown)}"


def test_workload_variables_reach_their_containers(
    environments: dict[str, dict[str, Any]],
) -> None:
    missing = []
    for name, documented in workload_variables().items():
        if name in FIXED or name in HOST_PATHS or name in COMPARE_ONLY or name in NO_TLS_IN_COMPOSE:
            continue
        for side, env in environments.items():
            if name not in READERS[side]:
                continue
            expected = f"${{{name}:-{documented}}}"
            if str(env.get(name)) != expected:
                missing.append(f"{side}: {name} is {env.get(name)!r}, not {expected!r}")
    assert not missing, "\n".join(missing)


def test_fixed_variables_are_fixed(environments: dict[str, dict[str, Any]]) -> None:
    for name in FIXED:
        for side, env in environments.items():
            if name in READERS[side] or name.startswith("OTEL_"):
                value = env.get(name)
                # A literal, or a compose-only variable: never .env's own value.
                assert value is not None and f"${{{name}:" not in str(value), (side, name, value)


def test_host_paths_stay_out(environments: dict[str, dict[str, Any]]) -> None:
    for env in environments.values():
        assert not HOST_PATHS & set(env), HOST_PATHS & set(env)


def test_header_points_to_something_that_exists() -> None:
    header = COMPOSE.read_text().split("services:")[0]
    for path in re.findall(r"\b((?:docs|grafana|prometheus|deploy)/[\w./-]+)", header):
        assert (ROOT / path).exists(), f"docker-compose.yml's header points to missing {path}"
    assert "docs/compose.md" not in header or (ROOT / "docs" / "compose.md").exists()
