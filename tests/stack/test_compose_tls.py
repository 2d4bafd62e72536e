"""The compose TLS variant (docker-compose.tls.yml over docker-compose.yml), checked offline.

* Debian's ``docker-compose config`` merges the two files (with .env.example and
  with no .env); the wiring is read from that merged output, i.e. what Docker would
  run: the one-shot ``certs`` service, the TLS variables of receiver and transmitter
  pointing into the certs volume, https healthchecks with the CA, start-up gated
  on ``certs`` completing, Prometheus mounted with ``prometheus/prometheus.tls.yml``
  (``promtool check config``; nothing but scheme and CA differs from prometheus.yml),
  Jaeger and Grafana untouched.
* Without Docker, the containers' commands run for real: ``certs``'s command writes
  the files (and keeps them on a second run), the receiver and the transmitter start
  with exactly the merged environment (certificate paths, loopback addresses and free
  ports remapped), the healthchecks' commands pass (and the plain stack's fail), a
  real ``prometheus`` with prometheus.tls.yml scrapes both over https verifying the
  compose host names, and the transmitter's comparisons (upload and push) complete.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers.external_tools import require_tool
from helpers.pki import TOKEN
from helpers.services import free_ports

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
COMPOSE_TLS = ROOT / "docker-compose.tls.yml"
ENV_EXAMPLE = ROOT / ".env.example"
PROMETHEUS = ROOT / "prometheus" / "prometheus.yml"
PROMETHEUS_TLS = ROOT / "prometheus" / "prometheus.tls.yml"
#: Where the compose files mount the certs volume, per service.
CERTS_VOLUME = "imgbench-certs"
TLS_VARIABLES = {"IMGBENCH_TLS", "IMGBENCH_TLS_CERT", "IMGBENCH_TLS_KEY", "IMGBENCH_TLS_CA"}
#: Service -> (Prometheus job, HTTP port inside the network).
SCRAPED = {"receiver": ("imgbench-receiver", 9101), "transmitter": ("imgbench-transmitter", 9102)}


def compose_config(tmp: Path, env_file: Path, *files: Path) -> dict[str, Any]:
    """``docker-compose config`` of ``files`` with ``env_file``: the merged project."""
    tool = require_tool("docker-compose")
    args = [tool, "--project-directory", str(ROOT)]
    for f in files:
        args += ["-f", str(f)]
    env = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
    proc = subprocess.run(
        [*args, "--env-file", str(env_file), "config"],
        capture_output=True, text=True, cwd=tmp, env=env, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "WARNING" not in proc.stderr, proc.stderr
    merged: dict[str, Any] = yaml.safe_load(proc.stdout)
    return merged


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The merged TLS project, with a token set (it must pass through unchanged)."""
    tmp = tmp_path_factory.mktemp("compose-tls")
    env_file = tmp / "token.env"
    env_file.write_text(f"IMGBENCH_TOKEN={TOKEN}\n")
    return compose_config(tmp, env_file, COMPOSE, COMPOSE_TLS)


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("compose-plain")
    env_file = tmp / "token.env"
    env_file.write_text(f"IMGBENCH_TOKEN={TOKEN}\n")
    return compose_config(tmp, env_file, COMPOSE)


def mounts(service: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """target -> (source, mode) of a service in ``docker-compose config`` output."""
    out = {}
    for spec in service.get("volumes", []):
        source, target, *mode = spec.split(":")
        out[target] = (source, mode[0] if mode else "rw")
    return out


def certs_dir(service: dict[str, Any]) -> str:
    (target,) = [t for t, (src, _) in mounts(service).items() if src == CERTS_VOLUME]
    return target


# ---- docker-compose config and promtool ----------------------------------------------------


@pytest.mark.parametrize("env_file", ["env-example", "no-env"])
def test_docker_compose_merges_the_tls_override(tmp_path: Path, env_file: str) -> None:
    path = ENV_EXAMPLE if env_file == "env-example" else tmp_path / "empty.env"
    if env_file == "no-env":
        path.write_text("")
    merged = compose_config(tmp_path, path, COMPOSE, COMPOSE_TLS)
    assert set(merged["services"]) == {"certs", "receiver", "transmitter", "prometheus",
                                       "grafana", "jaeger"}  # fmt: skip
    assert set(merged["volumes"]) == {"prometheus-data", CERTS_VOLUME}


def test_the_override_matches_the_compose_specification() -> None:
    tool = require_tool("check-jsonschema")
    proc = subprocess.run(
        [tool, "--builtin-schema", "vendor.compose-spec", str(COMPOSE_TLS)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_promtool_accepts_the_tls_prometheus_config() -> None:
    tool = require_tool("promtool")
    proc = subprocess.run(
        [tool, "check", "config", str(PROMETHEUS_TLS)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and "SUCCESS" in proc.stdout + proc.stderr, proc.stderr


def test_the_tls_prometheus_config_differs_only_in_scheme_and_ca() -> None:
    plain_cfg = yaml.safe_load(PROMETHEUS.read_text())
    tls_cfg = yaml.safe_load(PROMETHEUS_TLS.read_text())
    for job in tls_cfg["scrape_configs"]:
        assert job.pop("scheme") == "https", job["job_name"]
        tls = job.pop("tls_config")
        # Verify against the CA; no insecure_skip_verify, no client certificate.
        assert set(tls) == {"ca_file"} and tls["ca_file"] == "/etc/prometheus/certs/ca.pem", tls
    assert tls_cfg == plain_cfg


# ---- the merged wiring -----------------------------------------------------------------------


def test_certs_runs_once_before_everything_that_reads_it(project: dict[str, Any]) -> None:
    services = project["services"]
    certs = services["certs"]
    command = certs["command"]
    assert command[:2] == ["imgbench", "certs"]
    assert command[command.index("--out") + 1] == certs_dir(certs)
    hosts = command[command.index("--hosts") + 1].split(",")
    assert set(hosts) >= {"receiver", "transmitter"}  # the names the clients use
    assert "--keep" in command and "--force" not in command  # `up` after `down` keeps the CA
    assert certs["network_mode"] == "none" and certs["read_only"] is True
    assert certs["restart"] == "no"
    # The services' user: the Dockerfiles' USER 10001:10001.
    assert command[command.index("--owner") + 1] == "10001:10001"
    for name in ("receiver", "transmitter", "prometheus"):
        depends = services[name]["depends_on"]
        assert depends["certs"] == {"condition": "service_completed_successfully"}, name
    # The plain stack's ordering stays.
    assert {"receiver", "prometheus", "jaeger"} <= set(services["transmitter"]["depends_on"])


def test_services_get_tls_from_the_volume(project: dict[str, Any], plain: dict[str, Any]) -> None:
    services = project["services"]
    for name in SCRAPED:
        service = services[name]
        env = service["environment"]
        where = certs_dir(service)
        assert mounts(service)[where] == (CERTS_VOLUME, "ro"), name
        assert str(env["IMGBENCH_TLS"]).lower() == "true", name
        assert env["IMGBENCH_TLS_CERT"] == f"{where}/cert.pem", name
        assert env["IMGBENCH_TLS_KEY"] == f"{where}/key.pem", name
        assert env["IMGBENCH_TLS_CA"] == f"{where}/ca.pem", name  # verify the peer
        assert "IMGBENCH_TLS_CLIENT_AUTH" not in env, name  # not offered (README)
        # Nothing else changes but the push host, and the token still passes.
        before = plain["services"][name]["environment"]
        changed = {k for k in env if env[k] != before.get(k)}
        assert changed - TLS_VARIABLES <= {"IMGBENCH_PUSH_HOST"}, (name, changed)
        assert env["IMGBENCH_TOKEN"] == TOKEN
    # Push: the receiver connects by a name the certificate carries.
    command = services["certs"]["command"]
    push_host = services["transmitter"]["environment"]["IMGBENCH_PUSH_HOST"]
    assert push_host in command[command.index("--hosts") + 1].split(",")


def test_healthchecks_speak_https_with_the_ca(project: dict[str, Any]) -> None:
    for name, (_, port) in SCRAPED.items():
        probe = " ".join(project["services"][name]["healthcheck"]["test"])
        assert f"https://localhost:{port}/healthz" in probe, name
        assert "cafile=os.environ['IMGBENCH_TLS_CA']" in probe, name
    assert project["services"]["certs"]["healthcheck"]["test"] == ["NONE"]  # disabled


def test_prometheus_reads_the_tls_config_and_the_ca(project: dict[str, Any]) -> None:
    prometheus = project["services"]["prometheus"]
    config = next(c.split("=", 1)[1] for c in prometheus["command"]
                  if c.startswith("--config.file="))  # fmt: skip
    targets = mounts(prometheus)
    assert Path(targets[config][0]).resolve() == PROMETHEUS_TLS.resolve()
    assert targets[config][1] == "ro"
    assert [t for t, (src, _) in targets.items() if src.endswith("prometheus.yml")] == []
    for job in yaml.safe_load(PROMETHEUS_TLS.read_text())["scrape_configs"]:
        ca = Path(job["tls_config"]["ca_file"])
        assert targets[str(ca.parent)] == (CERTS_VOLUME, "ro"), ca


def test_jaeger_and_grafana_are_untouched(project: dict[str, Any], plain: dict[str, Any]) -> None:
    def normal(service: dict[str, Any]) -> dict[str, Any]:
        # docker-compose config reorders ports and volumes; their order means nothing.
        return {k: sorted(v) if k in {"ports", "volumes"} else v for k, v in service.items()}

    for name in ("jaeger", "grafana"):
        assert normal(project["services"][name]) == normal(plain["services"][name]), name


# ---- the containers' commands, run for real ------------------------------------------------


class Processes:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        log = (self.tmp / f"{name}.log").open("wb")
        self.procs[name] = subprocess.Popen(
            argv, env=env, cwd=self.tmp, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip

    def logs(self) -> str:
        return "\n".join(
            f"---- {n} ----\n{(self.tmp / f'{n}.log').read_text(errors='replace')[-3000:]}"
            for n in self.procs
        )

    def wait_for(self, what: str, probe: Callable[[], Any], timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    pytest.fail(f"{name} exited with {proc.returncode}\n{self.logs()}")
            try:
                value = probe()
            except (OSError, ValueError) as exc:
                last, value = exc, None
            if value:
                return value
            time.sleep(0.3)
        pytest.fail(f"timed out waiting for {what} (last error: {last})\n{self.logs()}")

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def https(url: str, ca: Path, method: str = "GET", body: bytes | None = None) -> tuple[int, Any]:
    ctx = ssl.create_default_context(cafile=str(ca))
    req = urllib.request.Request(url, method=method, data=body,
                                 headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
    try:
        with urllib.request.urlopen(req, timeout=5, context=ctx) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    return status, json.loads(raw) if raw else None


def handshake(port: int, ca: Path, host: str) -> str:
    """The TLS version negotiated with 127.0.0.1:``port``, the client expecting ``host``."""
    ctx = ssl.create_default_context(cafile=str(ca))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname=host) as tls,
    ):
        return str(tls.version())


def run_healthcheck(test: list[str], env: dict[str, str], port: int, inner: int) -> int:
    """The compose healthcheck's command, its port remapped: its exit status."""
    assert test[0] == "CMD"
    argv = [a.replace(f":{inner}/", f":{port}/") for a in test[1:]]
    return subprocess.run(argv, env=env, capture_output=True, timeout=30).returncode


@pytest.fixture
def local_env() -> dict[str, str]:
    """PATH with the venv's console scripts (imgbench, python) first, as in the images."""
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
    return env


def test_the_tls_stack_runs_as_composed(
    project: dict[str, Any], plain: dict[str, Any], tmp_path: Path, local_env: dict[str, str]
) -> None:
    prometheus_bin = require_tool("prometheus")
    services = project["services"]
    ws, grpc, rhttp, thttp, prom, otlp = free_ports(6)
    certs = tmp_path / "certs"
    inner = certs_dir(services["receiver"])
    assert certs_dir(services["transmitter"]) == inner == certs_dir(services["certs"])

    def repath(value: Any) -> str:
        text = str(value)
        if text.startswith(f"{inner}/") or text == inner:
            return str(certs) + text[len(inner) :]
        return text

    def remap(value: Any) -> str:
        text = repath(value)
        return {"8765": str(ws), "50051": str(grpc), "9101": str(rhttp), "9102": str(thttp),
                "0.0.0.0": "127.0.0.1", "receiver": "127.0.0.1", "transmitter": "127.0.0.1",
                "http://jaeger:4318": f"http://127.0.0.1:{otlp}"}.get(text, text)  # fmt: skip

    def env_of(name: str, **extra: str) -> dict[str, str]:
        env = {k: remap(v) for k, v in services[name]["environment"].items()}
        return {**local_env, **env, **extra}

    # 1. The certs service's command, as composed (the volume is a directory here).
    command = [repath(a) for a in services["certs"]["command"]]
    if os.getuid() != 0:  # chown to another user needs root; the files are the same
        at = command.index("--owner")
        command[at + 1] = f"{os.getuid()}:{os.getgid()}"
    made = subprocess.run(command, env=local_env, capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    before = {p.name: p.read_bytes() for p in certs.iterdir()}
    assert set(before) == {"ca.pem", "cert.pem", "key.pem"}
    assert (certs / "key.pem").stat().st_mode & 0o077 == 0
    again = subprocess.run(command, env=local_env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "kept" in again.stdout, again.stdout + again.stderr
    assert {p.name: p.read_bytes() for p in certs.iterdir()} == before  # `up` keeps the CA
    ca = certs / "ca.pem"

    procs = Processes(tmp_path)
    try:
        # 2. The receiver with the merged environment; the composed healthcheck passes,
        #    the plain stack's (http://) does not: the port speaks TLS only.
        receiver_env = env_of("receiver")
        procs.start("receiver", ["imgbench", "receiver"], receiver_env)
        check = services["receiver"]["healthcheck"]["test"]
        procs.wait_for(
            "the receiver's healthcheck",
            lambda: run_healthcheck(check, receiver_env, rhttp, 9101) == 0,
            30,
        )
        plain_check = plain["services"]["receiver"]["healthcheck"]["test"]
        assert run_healthcheck(plain_check, receiver_env, rhttp, 9101) != 0
        # The certificate is valid for the compose name on every port, not for others.
        for port in (ws, grpc, rhttp):
            assert handshake(port, ca, "receiver") == "TLSv1.3"
            with pytest.raises(ssl.SSLCertVerificationError):
                handshake(port, ca, "jaeger")

        # 3. Prometheus with prometheus.tls.yml: targets on loopback, and the compose host
        #    names kept as the names the certificates must carry (server_name).
        config = yaml.safe_load(PROMETHEUS_TLS.read_text())
        config["rule_files"] = [str(PROMETHEUS_TLS.parent / r) for r in config["rule_files"]]
        local_port = {"receiver": rhttp, "transmitter": thttp}
        for job in config["scrape_configs"]:
            (target,) = job["static_configs"][0]["targets"]
            host, _ = target.split(":")
            job["static_configs"][0]["targets"] = [f"127.0.0.1:{local_port[host]}"]
            job["tls_config"]["server_name"] = host
            job["tls_config"]["ca_file"] = repath(
                job["tls_config"]["ca_file"].replace("/etc/prometheus/certs", inner)
            )
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
        procs.start(
            "prometheus",
            [prometheus_bin, f"--config.file={tmp_path / 'prometheus.yml'}",
             f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{prom}", "--log.level=warn"],
            {"PATH": local_env["PATH"]},
        )  # fmt: skip

        # 4. The transmitter service, as composed: its start-up comparison must complete
        #    over wss:// and gRPC-TLS, verifying the receiver against the CA.
        quick = {"IMGBENCH_IMAGES": "2", "IMGBENCH_DELAY": "0", "RUN_INTERVAL_SECONDS": "0"}
        transmitter_env = env_of("transmitter", **quick)
        procs.start("transmitter", ["imgbench", "transmitter", "--serve"], transmitter_env)
        check = services["transmitter"]["healthcheck"]["test"]
        procs.wait_for(
            "the transmitter's healthcheck",
            lambda: run_healthcheck(check, transmitter_env, thttp, 9102) == 0,
            30,
        )
        api = f"https://127.0.0.1:{thttp}"

        def latest() -> dict[str, Any] | None:
            status, body = https(f"{api}/runs/latest", ca)
            return body if status == 200 else None

        first = procs.wait_for("the start-up comparison", latest, 90)
        assert first["status"] == "ok", first
        assert {"websocket", "grpc"} <= set(json.dumps(first).replace('"', " ").split())

        # 5. A push run: the receiver connects to the transmitter's push servers by
        #    IMGBENCH_PUSH_HOST and verifies them against the CA.
        status, started = https(f"{api}/runs", ca, "POST", b'{"direction": "push"}')
        assert status == 202, started

        def pushed() -> dict[str, Any] | None:
            body = latest()
            return body if body and json.dumps(body).count(started["run_id"]) else None

        push = procs.wait_for("the push comparison", pushed, 90)
        assert push["status"] == "ok", push

        # 6. Prometheus scraped both over https, verifying the compose names.
        def targets_up() -> list[dict[str, Any]] | None:
            url = f"http://127.0.0.1:{prom}/api/v1/targets"
            with urllib.request.urlopen(url, timeout=5) as resp:
                active = json.loads(resp.read())["data"]["activeTargets"]
            up = [t for t in active if t["health"] == "up"]
            return active if len(up) == len(SCRAPED) else None

        active = procs.wait_for("prometheus scraping both services over https", targets_up, 30)
        assert {t["labels"]["job"] for t in active} == {job for job, _ in SCRAPED.values()}
        assert all(t["scrapeUrl"].startswith("https://") for t in active), active
    finally:
        procs.stop()
