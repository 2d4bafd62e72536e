"""The Kubernetes manifests under deploy/, checked offline.

* Every overlay renders with ``kubectl kustomize`` (kustomize v5 built into kubectl).
* Every rendered object validates against the schemas of a pinned Kubernetes version
  (``kubernetes-validate``, strict: unknown fields are errors), and the Prometheus
  Operator objects against the CRDs vendored in deploy/crds/ (same strictness).
* The policy scan (checkov, pinned) passes; its exceptions are annotations that
  carry their reason.
* Placement: cross-node keeps the transmitters off the receiver's node, same-node
  puts them on it (required, on kubernetes.io/hostname).
* The monitoring component carries exactly the rules of prometheus/rules and the
  dashboard of grafana/dashboards, under the job names they select on.
* The services start with the manifests' exact command, args and environment
  (loopback addresses and free ports aside), pass their probes, and the Job's
  comparison succeeds against them; with the tls overlay too, from the Secret the
  README's commands make (``imgbench certs``, ``kubectl create secret --dry-run``);
  tests/stack/test_kubernetes_tls.py checks the component's wiring.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import shlex
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from imgbench import config

from helpers.external_tools import require_tool
from helpers.services import free_ports

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
OVERLAYS = ("cross-node", "same-node", "monitoring", "tls")
#: The Kubernetes version whose API schemas the objects must satisfy.
KUBERNETES_VERSION = "1.35.0"
CRDS = DEPLOY / "crds" / "prometheus-operator-v0.93.0"
DASHBOARD = ROOT / "grafana" / "dashboards" / "imgbench.json"
RULES = ROOT / "prometheus" / "rules" / "imgbench.rules.yml"
JOBS = {"imgbench-receiver", "imgbench-transmitter"}
WORKLOADS = {"Deployment", "Job"}


def render(path: Path) -> list[dict[str, Any]]:
    kubectl = require_tool("kubectl")
    proc = subprocess.run(
        [kubectl, "kustomize", str(path)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, f"kubectl kustomize {path}: {proc.stderr}"
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    return {overlay: render(DEPLOY / "overlays" / overlay) for overlay in OVERLAYS}


def find(objs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (obj,) = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    return obj


def config_map(objs: list[dict[str, Any]], prefix: str) -> dict[str, str]:
    (obj,) = [
        o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith(prefix)
    ]
    data: dict[str, str] = obj["data"]
    return data


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


# ---- rendering and schemas -------------------------------------------------------------


def test_every_overlay_renders(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for overlay, objs in rendered.items():
        kinds = sorted(o["kind"] for o in objs)
        assert kinds.count("Deployment") == 2 and kinds.count("Job") == 1, (overlay, kinds)
        assert all(
            o["metadata"].get("namespace") == "imgbench" for o in objs if o["kind"] != "Namespace"
        )


def strict_crd_schema(schema: Any) -> Any:
    """The CRD schema with unknown fields rejected, as the API server prunes them."""
    if isinstance(schema, dict):
        out = {
            k: strict_crd_schema(v) for k, v in schema.items() if not k.startswith("x-kubernetes")
        }
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict_crd_schema(v) for v in schema]
    return schema


def crd_schemas() -> dict[tuple[str, str], Any]:
    """(apiVersion, kind) -> openAPIV3Schema of the vendored CRDs."""
    schemas = {}
    for path in sorted(CRDS.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        for version in crd["spec"]["versions"]:
            key = (f"{crd['spec']['group']}/{version['name']}", crd["spec"]["names"]["kind"])
            schemas[key] = strict_crd_schema(version["schema"]["openAPIV3Schema"])
    return schemas


def validate(obj: dict[str, Any], crds: dict[tuple[str, str], Any]) -> None:
    key = (obj["apiVersion"], obj["kind"])
    if key in crds:
        # No check_schema: the CRDs carry Go regexes (e.g. "^(?i)(abort|warn)?$") that
        # Python's re rejects; they only matter for fields imgbench does not set.
        jsonschema.Draft7Validator(crds[key]).validate(obj)
    else:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_every_object_validates(rendered: dict[str, list[dict[str, Any]]]) -> None:
    crds = crd_schemas()
    assert {k for _, k in crds} >= {"ServiceMonitor", "PrometheusRule"}
    for overlay, objs in rendered.items():
        for obj in objs:
            try:
                validate(obj, crds)
            except Exception as exc:  # any validation error names the object
                pytest.fail(f"{overlay}: {obj['kind']}/{obj['metadata']['name']}: {exc}")


def test_validation_rejects_mistakes(rendered: dict[str, list[dict[str, Any]]]) -> None:
    """The checks can fail: a misspelt field, in a built-in and in a CRD object."""
    crds = crd_schemas()
    objs = rendered["monitoring"]
    deployment = copy.deepcopy(find(objs, "Deployment", "imgbench-receiver"))
    pod_spec(deployment)["containers"][0]["readinessProbe"]["httpGet"]["prot"] = 1
    monitor = copy.deepcopy(find(objs, "ServiceMonitor", "imgbench-receiver"))
    monitor["spec"]["endpoints"][0]["intervall"] = "5s"
    for broken in (deployment, monitor):
        with pytest.raises(Exception, match=r"prot|intervall"):
            validate(broken, crds)


def test_crds_are_pinned_with_their_source() -> None:
    for path in CRDS.glob("*.yaml"):
        crd = yaml.safe_load(path.read_text())
        assert crd["metadata"]["annotations"]["operator.prometheus.io/version"] == "0.93.0"
    assert "v0.93.0" in (CRDS / "SOURCE.md").read_text()


# ---- security and resources ----------------------------------------------------------------


def test_pods_are_locked_down(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for obj in rendered["monitoring"]:
        if obj["kind"] not in WORKLOADS:
            continue
        spec = pod_spec(obj)
        name = obj["metadata"]["name"]
        assert spec["automountServiceAccountToken"] is False, name
        pod_sc = spec["securityContext"]
        assert pod_sc["runAsNonRoot"] and pod_sc["runAsUser"] == 10001, name
        assert pod_sc["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] and not sc["allowPrivilegeEscalation"], name
            assert sc["capabilities"]["drop"] == ["ALL"] and "add" not in sc["capabilities"]
            res = c["resources"]
            assert res["requests"] == res["limits"] and {"cpu", "memory"} <= set(res["limits"])
            assert re.fullmatch(r"imgbench-(receiver|transmitter):0\.1\.0", c["image"]), c["image"]
            # Writable paths are volumes (the root filesystem is read-only).
            mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
            assert "/tmp" in mounts, name


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_network_policy_admits_only_transmitters_and_prometheus(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    objs = rendered["monitoring"]
    policy = find(objs, "NetworkPolicy", "imgbench-receiver")
    receiver = find(objs, "Deployment", "imgbench-receiver")
    assert selects(
        policy["spec"]["podSelector"]["matchLabels"],
        receiver["spec"]["template"]["metadata"]["labels"],
    )
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    pods = {
        o["metadata"]["name"]: o["spec"]["template"]["metadata"]["labels"]
        for o in objs
        if o["kind"] in WORKLOADS
    }
    admitted = set()
    for rule in policy["spec"]["ingress"]:
        for peer in rule["from"]:
            if "namespaceSelector" in peer:  # another namespace: Prometheus only
                assert peer["podSelector"]["matchLabels"] == {
                    "app.kubernetes.io/name": "prometheus"
                }
                assert [p["port"] for p in rule["ports"]] == ["http"]
                continue
            admitted |= {
                n
                for n, labels in pods.items()
                if selects(peer["podSelector"]["matchLabels"], labels)
            }
    assert admitted == {"imgbench-transmitter", "imgbench-compare"}


def test_checkov_passes_with_justified_exceptions(tmp_path: Path) -> None:
    checkov = require_tool("checkov")
    for overlay in OVERLAYS:
        out = tmp_path / f"{overlay}.yaml"
        out.write_text(yaml.safe_dump_all(render(DEPLOY / "overlays" / overlay)))
        proc = subprocess.run(
            [
                checkov,
                "--quiet",
                "--compact",
                "--framework",
                "kubernetes",
                "-f",
                str(out),
                "--output",
                "json",
                "--skip-download",
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        report = json.loads(proc.stdout)
        summary = report["summary"]
        assert proc.returncode == 0 and summary["failed"] == 0, proc.stdout[-4000:]
        assert summary["passed"] > 20, summary  # it really scanned something
    for path in (DEPLOY / "base").glob("*.yaml"):
        for line in path.read_text().splitlines():
            if "checkov.io/skip" in line:
                check, _, reason = line.split(":", 1)[1].strip().partition("=")
                assert re.fullmatch(r"CKV2?_K8S_\d+", check) and len(reason) > 30, line


# ---- placement -----------------------------------------------------------------------------


def required_terms(workload: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    affinity = pod_spec(workload).get("affinity", {}).get(kind, {})
    terms: list[dict[str, Any]] = affinity.get("requiredDuringSchedulingIgnoredDuringExecution", [])
    return terms


RECEIVER_LABELS = {"app.kubernetes.io/name": "imgbench", "app.kubernetes.io/component": "receiver"}


@pytest.mark.parametrize(
    ("overlay", "kind"), [("cross-node", "podAntiAffinity"), ("same-node", "podAffinity")]
)
def test_placement(rendered: dict[str, list[dict[str, Any]]], overlay: str, kind: str) -> None:
    objs = rendered[overlay]
    for name, k in (("imgbench-transmitter", "Deployment"), ("imgbench-compare", "Job")):
        (term,) = required_terms(find(objs, k, name), kind)
        assert term["topologyKey"] == "kubernetes.io/hostname"
        assert term["labelSelector"]["matchLabels"] == RECEIVER_LABELS
    other = "podAffinity" if kind == "podAntiAffinity" else "podAntiAffinity"
    assert not any(required_terms(o, other) for o in objs if o["kind"] in WORKLOADS)


def test_monitoring_keeps_cross_node_placement(rendered: dict[str, list[dict[str, Any]]]) -> None:
    job = find(rendered["monitoring"], "Job", "imgbench-compare")
    assert required_terms(job, "podAntiAffinity")


# ---- monitoring ------------------------------------------------------------------------------


def test_copies_in_the_monitoring_component_are_current() -> None:
    proc = subprocess.run(
        [sys.executable, str(DEPLOY / "sync.py"), "--check"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr


def test_monitoring_objects(rendered: dict[str, list[dict[str, Any]]]) -> None:
    objs = rendered["monitoring"]
    services = {o["metadata"]["name"]: o for o in objs if o["kind"] == "Service"}
    assert set(services) == JOBS  # the Prometheus job label is the Service name
    for monitor in (o for o in objs if o["kind"] == "ServiceMonitor"):
        matched = [
            s
            for s in services.values()
            if selects(monitor["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])
        ]
        assert [s["metadata"]["name"] for s in matched] == [monitor["metadata"]["name"]]
        (endpoint,) = monitor["spec"]["endpoints"]
        ports = {p["name"] for p in matched[0]["spec"]["ports"]}
        assert endpoint["port"] in ports and endpoint["path"] == "/metrics"
    rule = find(objs, "PrometheusRule", "imgbench")
    assert rule["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]
    dashboard = find(objs, "ConfigMap", "imgbench-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert dashboard["data"] == {"imgbench.json": DASHBOARD.read_text(encoding="utf-8")}


# ---- settings and the services started as the manifests say ---------------------------------


def env_of(objs: list[dict[str, Any]], workload: dict[str, Any]) -> dict[str, str]:
    """The container's environment as the kubelet builds it: envFrom, then env."""
    (container,) = pod_spec(workload)["containers"]
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(find(objs, "ConfigMap", source["configMapRef"]["name"])["data"])
    env.update({e["name"]: e["value"] for e in container.get("env", [])})
    return env


def test_every_setting_is_one_the_service_reads(rendered: dict[str, list[dict[str, Any]]]) -> None:
    reads = {
        "receiver": {o.env for o in config.RECEIVER_OPTIONS},
        "transmitter": {o.env for o in config.TRANSMITTER_OPTIONS},
    }
    objs = rendered["cross-node"]
    for workload in (o for o in objs if o["kind"] in WORKLOADS):
        side = "receiver" if "receiver" in workload["metadata"]["name"] else "transmitter"
        env = env_of(objs, workload)
        unknown = {k for k in env if not k.startswith("OTEL_")} - reads[side]
        assert not unknown, (
            f"{workload['metadata']['name']}: {sorted(unknown)} are not {side} settings"
        )
        # ... and they parse (a bad value would exit 2 naming it).
        if side == "receiver":
            config.receiver_settings(environ=env)
        else:
            config.transmitter_settings(environ=env)


def probe_url(
    objs: list[dict[str, Any]], workload: dict[str, Any], env: dict[str, str], kind: str
) -> str:
    """The probe's URL here: its container port is the value of one setting, remapped;
    the scheme is the probe's (HTTP unless it says HTTPS)."""
    (container,) = pod_spec(workload)["containers"]
    http = container[kind]["httpGet"]
    (port,) = [p for p in container["ports"] if p["name"] == http["port"]]
    holders = [
        k
        for k, v in env_of(objs, workload).items()
        if k.endswith("_PORT") and v == str(port["containerPort"])
    ]
    assert holders, f"no setting holds port {port['containerPort']}: the probe would miss"
    scheme = http.get("scheme", "HTTP").lower()
    return f"{scheme}://127.0.0.1:{env[holders[0]]}{http['path']}"


@pytest.fixture
def local_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Base environment: the venv's console scripts first on PATH, as in the image."""
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
    yield env


def readme_secret_commands() -> list[list[str]]:
    """The ``imgbench certs`` and ``kubectl ... create secret`` commands of README
    "On Kubernetes", TLS (continuation lines joined)."""
    section = (ROOT / "README.md").read_text().split("\n## On Kubernetes\n", 1)[1]
    block = section.split("\n### TLS\n", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    lines = block.replace("\\\n", " ").splitlines()
    wanted = ("imgbench certs ", "kubectl -n imgbench create secret ")
    commands = [shlex.split(line) for line in lines if line.startswith(wanted)]
    assert [c[:2] for c in commands] == [["imgbench", "certs"], ["kubectl", "-n"]], lines
    return commands


def secret_files(directory: Path, local_env: dict[str, str]) -> Path:
    """The Secret imgbench-tls as the pods see it, made by the README's own commands
    (``imgbench certs``, then ``kubectl create secret`` with ``--dry-run=client``): the
    Secret validated, its keys written as files, as the kubelet mounts them."""
    certs, secret_cmd = readme_secret_commands()
    made = subprocess.run(certs, cwd=directory, env=local_env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert made.returncode == 0, made.stderr
    kubectl = require_tool("kubectl")
    proc = subprocess.run(
        [kubectl, *secret_cmd[1:], "--dry-run=client", "-o", "yaml"],
        cwd=directory, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    obj = yaml.safe_load(proc.stdout)
    kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    assert (obj["kind"], obj["type"]) == ("Secret", "kubernetes.io/tls")
    assert (obj["metadata"]["name"], obj["metadata"]["namespace"]) == ("imgbench-tls", "imgbench")
    assert set(obj["data"]) == {"tls.crt", "tls.key", "ca.crt"}
    secret = directory / "secret"
    secret.mkdir()
    for key, value in obj["data"].items():
        (secret / key).write_bytes(base64.b64decode(value))
    return secret


def scrape_as_monitored(monitor: dict[str, Any], port: int, ca: Path) -> int:
    """The status of a GET of the ServiceMonitor's path on 127.0.0.1:``port``, over TLS
    as its endpoint says (scheme, CA, serverName, minVersion)."""
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["scheme"] == "https"
    tls = endpoint["tlsConfig"]
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.minimum_version = {"TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}[
        tls["minVersion"]
    ]
    host = tls["serverName"]
    request = f"GET {endpoint['path']} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname=host) as conn,
    ):
        conn.sendall(request.encode())
        return int(conn.recv(64).split()[1])


@pytest.mark.parametrize("overlay", ["cross-node", "tls"])
def test_services_start_as_the_manifests_say(
    rendered: dict[str, list[dict[str, Any]]],
    tmp_path: Path,
    local_env: dict[str, str],
    overlay: str,
) -> None:
    objs = rendered[overlay]
    ws, grpc, http, api = free_ports(4)
    context = None
    remap_dirs: dict[str, str] = {}
    if overlay == "tls":
        secret = secret_files(tmp_path, local_env)
        (mount,) = {
            m["mountPath"]
            for o in objs
            if o["kind"] in WORKLOADS
            for m in pod_spec(o)["containers"][0]["volumeMounts"]
            if m["name"] == "tls"
        }
        remap_dirs[mount] = str(secret)
        # Stricter than the kubelet, which does not verify a probe's certificate.
        context = ssl.create_default_context(cafile=str(secret / "ca.crt"))

    def repath(value: str) -> str:
        for inside, here in remap_dirs.items():
            if value.startswith(f"{inside}/"):
                return here + value[len(inside) :]
        return value

    remap = {
        "8765": str(ws),
        "50051": str(grpc),
        "9101": str(http),
        "9102": str(api),
        "0.0.0.0": "127.0.0.1",
        "imgbench-receiver": "127.0.0.1",
        "/results": str(tmp_path / "results"),
    }
    quick = {"IMGBENCH_IMAGES": "2", "IMGBENCH_DELAY": "0", "IMGBENCH_CONNECT_TIMEOUT": "20"}
    procs: list[subprocess.Popen[bytes]] = []

    def start(
        workload: dict[str, Any], extra: dict[str, str]
    ) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
        (container,) = pod_spec(workload)["containers"]
        env = {k: repath(remap.get(v, v)) for k, v in env_of(objs, workload).items()}
        env.update(extra)
        name = workload["metadata"]["name"]
        log = (tmp_path / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            [*container["command"], *container["args"]],
            env={**local_env, **env},
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        procs.append(proc)
        return proc, env

    def healthy(proc: subprocess.Popen[bytes], url: str, name: str) -> None:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (tmp_path / f"{name}.log").read_text()
            try:
                with urllib.request.urlopen(url, timeout=2, context=context) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            assert time.monotonic() < deadline, f"{name}: {url} never answered 200"
            time.sleep(0.3)

    try:
        receiver = find(objs, "Deployment", "imgbench-receiver")
        proc, env = start(receiver, {})
        for kind in ("readinessProbe", "livenessProbe"):
            healthy(proc, probe_url(objs, receiver, env, kind), "imgbench-receiver")

        service = find(objs, "Deployment", "imgbench-transmitter")
        proc, env = start(service, {**quick, "RUN_INTERVAL_SECONDS": "0"})
        for kind in ("readinessProbe", "livenessProbe"):
            healthy(proc, probe_url(objs, service, env, kind), "imgbench-transmitter")

        if overlay == "tls":
            # What the Prometheus Operator makes of each ServiceMonitor: https, the CA
            # from the Secret, the serverName as the expected host name, its minVersion.
            for name, port in (("imgbench-receiver", http), ("imgbench-transmitter", api)):
                monitor = find(objs, "ServiceMonitor", name)
                assert scrape_as_monitored(monitor, port, secret / "ca.crt") == 200, name

        job = find(objs, "Job", "imgbench-compare")
        proc, _ = start(job, quick)
        assert proc.wait(timeout=120) == 0, (tmp_path / "imgbench-compare.log").read_text()
        log = (tmp_path / "imgbench-compare.log").read_text()
        assert "websocket" in log and "grpc" in log, log[-2000:]
        assert any((tmp_path / "results").rglob("*.json")), (
            "the Job wrote no result under IMGBENCH_OUTPUT"
        )
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
