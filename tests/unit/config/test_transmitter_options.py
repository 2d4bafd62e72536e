"""The transmitter's option groups and the two command tables made of them."""

from __future__ import annotations

from imgbench.config import transmitter_options as t
from imgbench.config.option import Option
from imgbench.config.shared_options import OBSERVE_OPTIONS, SECURITY_OPTIONS, TRANSPORT_OPTIONS


def _names(*groups: tuple[Option, ...]) -> set[str]:
    return {o.name for group in groups for o in group}


def test_the_commands_take_their_own_groups_and_not_the_others() -> None:
    common = _names(t.TARGET_OPTIONS, t.WORKLOAD_OPTIONS, t.PUSH_OPTIONS, TRANSPORT_OPTIONS,
                    (t.OUTPUT,), SECURITY_OPTIONS, OBSERVE_OPTIONS)  # fmt: skip
    assert _names(t.TRANSMITTER_OPTIONS) == common | _names(t.SERVICE_OPTIONS)
    assert _names(t.COMPARE_OPTIONS) == common | _names(t.COMPARE_ONLY_OPTIONS)
    assert len(t.TRANSMITTER_OPTIONS) == len(_names(t.TRANSMITTER_OPTIONS))
    assert len(t.COMPARE_OPTIONS) == len(_names(t.COMPARE_OPTIONS))


def test_only_the_receivers_address_waits_for_external_receiver() -> None:
    assert {"receiver_host", "ws_port", "grpc_port", "http_port"} == t.EXTERNAL_ONLY
