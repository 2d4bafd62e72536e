"""Reject reasons (metric label values) come from the error tree, once."""

from __future__ import annotations

from imgbench import errors
from imgbench.observe.metrics import REJECT_REASONS


def _concrete_wire_errors() -> list[type[errors.WireError]]:
    found, todo = [], list(errors.WireError.__subclasses__())
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_every_wire_error_has_its_own_reason_label() -> None:
    classes = _concrete_wire_errors()
    assert set(classes) == set(errors.WIRE_ERRORS)
    reasons = [cls.reason for cls in classes]
    assert len(set(reasons)) == len(reasons)
    assert all(r != errors.WireError.reason for r in reasons)
    assert sorted(REJECT_REASONS) == sorted(reasons)


def test_reject_reasons_are_the_known_labels() -> None:
    assert REJECT_REASONS == (
        "malformed",
        "oversized",
        "wrong_frame_type",
        "invalid_utf8",
        "frame_error",
        "invalid_field",
        "duplicate",
        "clock",
        "runs_full",
        "records_full",
        "run_evicted",
        "uploads_busy",
        "upload_stalled",
        "connections_full",
    )
