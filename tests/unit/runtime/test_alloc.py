"""The allocator tuning applies on glibc, once, and never fails elsewhere."""

from __future__ import annotations

import platform

import pytest

from imgbench.runtime import alloc


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_applied_once_on_glibc() -> None:
    assert alloc.keep_image_buffers() is True
    assert alloc.keep_image_buffers() is True  # idempotent


def test_user_tunables_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "1")
    assert alloc.keep_image_buffers() is False
    assert alloc.keep_image_buffers({"MALLOC_ARENA_MAX_": "2"}) is False


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_explicit_environment_is_the_one_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "1")
    assert alloc.keep_image_buffers({}) is True
