"""deploy/components/tls, rendered: what it adds and that it adds nothing else.

The shared checks (schemas, checkov, locked-down pods) and the services started with
the tls overlay's environment are in tests/stack/test_kubernetes.py (the overlay is
in its OVERLAYS); here the component's own contract:

* every workload mounts the Secret ``imgbench-tls`` read-only (0440) and points
  IMGBENCH_TLS_CERT/KEY/CA at its keys tls.crt, tls.key, ca.crt;
* both Deployments probe with scheme HTTPS; the ServiceMonitors scrape https,
  verifying the CA of the same Secret and the Service's name, TLS 1.3 minimum;
* removing exactly those fields gives back the monitoring overlay, object for object;
* the component works without the monitoring component, and the cert-manager example
  names every host a client verifies.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import yaml

from stack.test_kubernetes import DEPLOY, WORKLOADS, env_of, pod_spec, render

SECRET = "imgbench-tls"
TLS_ENV = {"IMGBENCH_TLS", "IMGBENCH_TLS_CERT", "IMGBENCH_TLS_KEY", "IMGBENCH_TLS_CA"}
CERTIFICATE = DEPLOY / "components" / "tls" / "certificate.yaml.example"


def tls_mount(workload: dict[str, Any]) -> str:
    """The mount path of the Secret volume (asserting how it is mounted)."""
    spec = pod_spec(workload)
    (volume,) = [v for v in spec["volumes"] if "secret" in v]
    assert volume["secret"]["secretName"] == SECRET
    assert volume["secret"]["defaultMode"] == 0o440  # group 10001 (fsGroup) reads the key
    (container,) = spec["containers"]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
    assert mount["readOnly"] is True
    path: str = mount["mountPath"]
    return path


def test_workloads_take_tls_from_the_secret() -> None:
    objs = render(DEPLOY / "overlays" / "tls")
    workloads = [o for o in objs if o["kind"] in WORKLOADS]
    assert len(workloads) == 3
    for workload in workloads:
        name = workload["metadata"]["name"]
        where = tls_mount(workload)
        env = env_of(objs, workload)
        assert env["IMGBENCH_TLS"] == "true", name
        assert env["IMGBENCH_TLS_CERT"] == f"{where}/tls.crt", name
        assert env["IMGBENCH_TLS_KEY"] == f"{where}/tls.key", name
        assert env["IMGBENCH_TLS_CA"] == f"{where}/ca.crt", name
        assert "IMGBENCH_TLS_CLIENT_AUTH" not in env, name
        if workload["kind"] == "Deployment":
            (container,) = pod_spec(workload)["containers"]
            for probe in ("readinessProbe", "livenessProbe"):
                assert container[probe]["httpGet"]["scheme"] == "HTTPS", (name, probe)


def test_service_monitors_scrape_https_verifying_the_service_name() -> None:
    objs = render(DEPLOY / "overlays" / "tls")
    services = {o["metadata"]["name"] for o in objs if o["kind"] == "Service"}
    monitors = [o for o in objs if o["kind"] == "ServiceMonitor"]
    assert len(monitors) == 2
    for monitor in monitors:
        (endpoint,) = monitor["spec"]["endpoints"]
        assert endpoint["scheme"] == "https"
        name = monitor["metadata"]["name"]
        assert endpoint["tlsConfig"] == {
            "ca": {"secret": {"name": SECRET, "key": "ca.crt"}},
            "serverName": name,
            "minVersion": "TLS13",
        }
        assert name in services


def strip_tls(objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``objs`` without what the component adds."""
    out = copy.deepcopy(objs)
    for obj in out:
        if obj["kind"] in WORKLOADS:
            spec = pod_spec(obj)
            spec["volumes"] = [v for v in spec["volumes"] if "secret" not in v]
            (container,) = spec["containers"]
            container["env"] = [e for e in container["env"] if e["name"] not in TLS_ENV]
            if not container["env"]:
                del container["env"]
            container["volumeMounts"] = [m for m in container["volumeMounts"]
                                         if m["name"] != "tls"]  # fmt: skip
            for probe in ("readinessProbe", "livenessProbe"):
                if probe in container:
                    assert container[probe]["httpGet"].pop("scheme") == "HTTPS"
        if obj["kind"] == "ServiceMonitor":
            for endpoint in obj["spec"]["endpoints"]:
                assert endpoint.pop("scheme") == "https"
                del endpoint["tlsConfig"]
    return out


def key(obj: dict[str, Any]) -> tuple[str, str]:
    return obj["kind"], obj["metadata"]["name"]


def test_the_component_adds_nothing_else() -> None:
    with_tls = strip_tls(render(DEPLOY / "overlays" / "tls"))
    without = render(DEPLOY / "overlays" / "monitoring")
    assert sorted(with_tls, key=key) == sorted(without, key=key)


def test_the_component_works_without_monitoring(tmp_path: Path) -> None:
    here = os.path.relpath(DEPLOY, tmp_path)  # kustomize refuses absolute paths
    (tmp_path / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"resources:\n  - {here}/overlays/same-node\n"
        f"components:\n  - {here}/components/tls\n"
    )
    objs = render(tmp_path)
    assert not [o for o in objs if o["kind"] == "ServiceMonitor"]
    for workload in (o for o in objs if o["kind"] in WORKLOADS):
        assert set(env_of(objs, workload)) >= TLS_ENV, workload["metadata"]["name"]
        tls_mount(workload)
    assert strip_tls(objs) == render(DEPLOY / "overlays" / "same-node")


def test_the_cert_manager_example_names_every_verified_host() -> None:
    certificate = yaml.safe_load(CERTIFICATE.read_text())
    assert certificate["kind"] == "Certificate"
    assert certificate["spec"]["secretName"] == SECRET
    names = set(certificate["spec"]["dnsNames"])
    objs = render(DEPLOY / "overlays" / "tls")
    verified = {o["spec"]["endpoints"][0]["tlsConfig"]["serverName"]
                for o in objs if o["kind"] == "ServiceMonitor"}  # fmt: skip
    verified |= {env_of(objs, o)["RECEIVER_HOST"] for o in objs
                 if o["kind"] in WORKLOADS and "RECEIVER_HOST" in env_of(objs, o)}  # fmt: skip
    assert verified == {"imgbench-receiver", "imgbench-transmitter"}
    assert verified <= names
    assert certificate["metadata"]["namespace"] == "imgbench"
