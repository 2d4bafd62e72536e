"""What every benchmark step leans on: fair rotation of variants, a restored environment."""

from __future__ import annotations

import os

from benchmarks.runs import environ, process_cpu_s, rotate


def test_rotation_puts_every_variant_in_every_position_and_reverses_on_odd_reps() -> None:
    items = ["a", "b", "c"]
    orders = [rotate(items, rep) for rep in range(6)]
    assert orders[0] == ["a", "b", "c"]
    assert orders[1] == ["a", "c", "b"]  # ["b", "c", "a"] reversed
    for position in range(3):
        assert {order[position] for order in orders} == set(items)
    assert all(sorted(order) == items for order in orders)


def test_environ_sets_unsets_and_restores() -> None:
    os.environ["IMGBENCH_TEST_KEEP"] = "before"
    os.environ.pop("IMGBENCH_TEST_NEW", None)
    try:
        with environ(IMGBENCH_TEST_KEEP=None, IMGBENCH_TEST_NEW="x"):
            assert "IMGBENCH_TEST_KEEP" not in os.environ
            assert os.environ["IMGBENCH_TEST_NEW"] == "x"
        assert os.environ["IMGBENCH_TEST_KEEP"] == "before"
        assert "IMGBENCH_TEST_NEW" not in os.environ
    finally:
        os.environ.pop("IMGBENCH_TEST_KEEP", None)


def test_process_cpu_from_proc_tracks_getrusage() -> None:
    import hashlib
    import resource

    def rusage() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    before, before_proc = rusage(), process_cpu_s(os.getpid())
    data = os.urandom(1 << 20)
    for _ in range(200):  # about 0.2-1 s of CPU
        hashlib.sha256(data).digest()
    spent, spent_proc = rusage() - before, process_cpu_s(os.getpid()) - before_proc
    assert spent > 0.05
    assert abs(spent_proc - spent) < 0.05 * spent + 0.02  # tick-rounded getrusage vs ns counters
