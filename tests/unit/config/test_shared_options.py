"""The options both services read are one object in each table: they cannot drift apart."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from imgbench.config.option import Option
from imgbench.config.receiver_options import RECEIVER_OPTIONS
from imgbench.config.report_options import REPORT_OPTIONS
from imgbench.config.shared_options import (
    OBSERVE_OPTIONS,
    RECEIVER_PORTS,
    SECURITY_OPTIONS,
    TRANSPORT_OPTIONS,
)
from imgbench.config.transmitter_options import COMPARE_OPTIONS, TRANSMITTER_OPTIONS

ROOT = Path(__file__).resolve().parents[3]
TABLES = {
    "receiver": RECEIVER_OPTIONS,
    "transmitter": TRANSMITTER_OPTIONS,
    "compare": COMPARE_OPTIONS,
    "report": REPORT_OPTIONS,
}


@pytest.mark.parametrize("table", ["receiver", "transmitter", "compare"])
def test_the_shared_options_are_in_each_services_table_as_they_are(table: str) -> None:
    for shared in (*OBSERVE_OPTIONS, *TRANSPORT_OPTIONS, *SECURITY_OPTIONS, *RECEIVER_PORTS):
        assert any(o is shared for o in TABLES[table]), (table, shared.name)


@pytest.mark.parametrize("table", sorted(TABLES))
def test_a_table_names_each_setting_once(table: str) -> None:
    options: tuple[Option, ...] = TABLES[table]
    for key in ("name", "env", "flag"):
        values = [getattr(o, key) for o in options]
        assert len(values) == len(set(values)), (table, key)


@pytest.mark.parametrize("table", sorted(TABLES))
def test_every_setting_is_documented_in_env_example(table: str) -> None:
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(),
                                re.MULTILINE))  # fmt: skip
    for option in TABLES[table]:
        assert option.env in documented, f"{option.env} missing from .env.example"


@pytest.mark.parametrize("table", sorted(TABLES))
def test_every_setting_is_in_the_readme_configuration_table(table: str) -> None:
    readme = (ROOT / "README.md").read_text()
    for option in TABLES[table]:
        assert f"`{option.env}`" in readme, f"{option.env} missing from README"
