"""Freezing after start-up: what lived then is left alone, garbage made later is still collected."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from imgbench.runtime.gcfreeze import freeze_after_startup


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_objects_alive_at_startup_leave_the_collected_generations(unfrozen: None) -> None:
    before = _Node()
    assert any(o is before for o in gc.get_objects())
    frozen = freeze_after_startup()
    assert frozen == gc.get_freeze_count() > 0
    assert not any(o is before for o in gc.get_objects())  # no collection walks it now


def test_garbage_made_after_the_freeze_is_still_collected(unfrozen: None) -> None:
    freeze_after_startup()
    a, b = _Node(), _Node()
    a.other, b.other = b, a  # a reference cycle: only the collector frees it
    gone = weakref.ref(a)
    del a, b
    gc.collect()
    assert gone() is None


def test_startup_garbage_is_collected_before_freezing(unfrozen: None) -> None:
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    gone = weakref.ref(a)
    del a, b
    freeze_after_startup()  # collects first, so the cycle is not frozen for ever
    assert gone() is None
