"""The allocator tuning applies on glibc, once, and never fails elsewhere."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

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


#: Run in a fresh interpreter (malloc tuning is process-wide): 4 threads alive at once,
#: one after another malloc 32 MiB, touch it and free it; print the RSS growth in MiB.
_THREADS_SCRIPT = """
import ctypes, ctypes.util, threading
from pathlib import Path
from imgbench.runtime import alloc
alloc.keep_image_buffers()
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = (ctypes.c_void_p,)
def rss():
    line = [l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("VmRSS")]
    return int(line[0].split()[1]) // 1024
size, turns, done = 32 << 20, [threading.Event() for _ in range(5)], threading.Barrier(5)
turns[0].set()
def worker(i):
    turns[i].wait()
    p = libc.malloc(size)
    ctypes.memset(p, 1, size)
    libc.free(p)
    turns[i + 1].set()
    done.wait()
before = rss()
threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
for t in threads: t.start()
done.wait()
print(rss() - before)
for t in threads: t.join()
"""


def _threads_growth_mib(env: dict[str, str]) -> int:
    out = subprocess.run(
        [sys.executable, "-c", _THREADS_SCRIPT],
        env={k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")} | env,
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return int(out.stdout)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_memory_one_thread_freed_is_reused_by_the_next() -> None:
    """grpc core receives on its own threads: with a malloc arena per thread (glibc's
    default, and each arena never trimmed under TRIM_THRESHOLD) every thread kept its
    own peak resident. One arena: the 4 threads' 32 MiB blocks are one block's worth."""
    assert _threads_growth_mib({}) < 2 * 32
    # The user's MALLOC_ARENA_MAX wins: then each thread keeps its own 32 MiB.
    assert _threads_growth_mib({"MALLOC_ARENA_MAX": "8"}) >= 4 * 30
