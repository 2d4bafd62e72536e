"""Recording and alerting rules: valid, unit-tested with the real promtool, provisioned."""

from __future__ import annotations

import subprocess
from pathlib import Path

from ruamel.yaml import YAML

from helpers.external_tools import require_tool

ROOT = Path(__file__).resolve().parents[2]
RULES_DIR = ROOT / "prometheus" / "rules"
RULES = RULES_DIR / "imgbench.rules.yml"
RULES_TEST = RULES_DIR / "imgbench.rules.test.yml"
PROMETHEUS_CONFIG = ROOT / "prometheus" / "prometheus.yml"
COMPOSE = ROOT / "docker-compose.yml"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_tool("promtool"), *args], capture_output=True, text=True, timeout=120
    )


def test_rules_are_valid() -> None:
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_pass() -> None:
    result = promtool("test", "rules", str(RULES_TEST))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_rule_unit_tests_can_fail(tmp_path: Path) -> None:
    """A rule that computes the wrong verdict makes promtool fail."""
    (tmp_path / RULES.name).write_text(
        RULES.read_text().replace(
            "topk by (job, instance, protocol, direction)",
            "bottomk by (job, instance, protocol, direction)",
        )
    )
    (tmp_path / RULES_TEST.name).write_text(RULES_TEST.read_text())
    result = promtool("test", "rules", str(tmp_path / RULES_TEST.name))
    assert result.returncode != 0 and "websocket_over_grpc" in result.stdout + result.stderr


def test_a_verdict_that_mixes_directions_fails_the_rule_tests(tmp_path: Path) -> None:
    """Without the direction in the grouping, a push median would meet an upload median."""
    rules = RULES.read_text()
    mixed = rules.replace(
        "topk by (job, instance, protocol, direction)", "topk by (job, instance, protocol)"
    ).replace("sum by (job, instance, direction)", "sum by (job, instance)")
    assert mixed != rules
    (tmp_path / RULES.name).write_text(mixed)
    (tmp_path / RULES_TEST.name).write_text(RULES_TEST.read_text())
    result = promtool("test", "rules", str(tmp_path / RULES_TEST.name))
    assert result.returncode != 0 and "websocket_over_grpc" in result.stdout + result.stderr


def test_the_required_alerts_exist() -> None:
    groups = YAML(typ="safe").load(RULES.read_text())["groups"]
    alerts = {r["alert"] for g in groups for r in g["rules"] if "alert" in r}
    assert alerts == {
        "ImgbenchIntegrityFailures",
        "ImgbenchSendErrors",
        "ImgbenchTargetDown",
        "ImgbenchNoRunCompleted",
    }
    tested = RULES_TEST.read_text()
    assert all(f"alertname: {a}" in tested for a in alerts), "an alert without a unit test"


def test_compose_provisions_the_rules() -> None:
    config = YAML(typ="safe").load(PROMETHEUS_CONFIG.read_text())
    (pattern,) = config["rule_files"]
    volumes = YAML(typ="safe").load(COMPOSE.read_text())["services"]["prometheus"]["volumes"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in volumes}
    # prometheus.yml is mounted at /etc/prometheus/; its rule_files path is relative to it.
    source = mounts.get(str(Path("/etc/prometheus") / Path(pattern).parent))
    assert source is not None, f"compose mounts nothing for rule_files {pattern}"
    assert (ROOT / source / Path(pattern).name).resolve() == RULES.resolve()
    result = promtool("check", "config", str(PROMETHEUS_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
