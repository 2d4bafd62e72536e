"""Two emulated hosts on one machine, joined by the emulated link.

Host ``a`` and host ``b`` are Linux network namespaces named
``<prefix>-<pid>-<n>-a`` / ``-b`` (``pid`` of the process that made them, ``n``
counting labs within it), so parallel labs never collide and a crashed run's
leftovers can be recognised: :func:`clean_stale` deletes those whose owner
pid is no longer alive, and every :class:`Lab` calls it on start.

Each host has its loopback up, IPv6 off (so no router solicitations cross the
measured link) and one TUN device, a point-to-point end of the link:
``a`` is 198.18.0.1, ``b`` is 198.18.0.2 (RFC 2544's benchmarking range),
with the link's MTU. The forwarder (:mod:`imgbench.lab.link`) holds both TUN
fds; the devices vanish when it exits, and it exits when the lab closes its
stdin or dies.

Programs run on a host through ``ip netns exec``. On host ``b`` with a
``clock-offset`` they also run through :mod:`imgbench.lab.timens` (what
``unshare --time --monotonic OFFSET --boottime OFFSET`` does, with sub-second
offsets), in a time namespace whose CLOCK_MONOTONIC (and CLOCK_BOOTTIME) is
OFFSET seconds ahead of host ``a``'s (the boot id stays the same: it is one
kernel). Where util-linux's ``setpriv`` exists, programs also
get a parent-death signal, so even a SIGKILLed lab leaves no orphan running.

Cleanup runs on every exit from ``async with Lab(...)``: exceptions,
cancellation (Ctrl-C under ``asyncio.run``) and SIGTERM, which the lab turns
into a cancellation and, after cleaning up, delivers again with its default
action (unless the program installed its own SIGTERM handler, which then
stays in charge). Cleanup kills the spawned programs (SIGTERM, then SIGKILL
after ``grace`` seconds) and anything else left in the namespaces, stops the
forwarder and deletes both namespaces.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import itertools
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal

import imgbench
from imgbench.errors import ConfigError
from imgbench.lab.errors import LabError, LabUnavailable
from imgbench.lab.spec import LinkSpec

Host = Literal["a", "b"]
HOSTS: tuple[Host, Host] = ("a", "b")
ADDRESSES: dict[Host, str] = {"a": "198.18.0.1", "b": "198.18.0.2"}
DEFAULT_PREFIX = "imgbench"

#: Kernel-side queue of each TUN device (packets waiting for the forwarder to read
#: them). Large, so that drops happen in the emulated bottleneck queue, where
#: they are counted and configured, rather than here when the forwarder lags.
TUN_TXQUEUELEN = 10_000

_TUNSETIFF = 0x400454CA
_IFF_TUN = 0x0001
_IFF_NO_PI = 0x1000
_CAP_NET_ADMIN = 12
_CAP_SYS_ADMIN = 21
_COMMAND_TIMEOUT_S = 20.0
_counter = itertools.count()


@dataclass(frozen=True)
class Tools:
    """Absolute paths of the programs the lab runs (``setpriv`` is optional)."""

    ip: str
    setpriv: str | None


def _unavailable(what: str) -> LabUnavailable:
    return LabUnavailable(f"two-host lab unavailable: {what}")


def _capabilities() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    return 0


def preflight(spec: LinkSpec) -> Tools:
    """Check that this machine can run a lab for ``spec``; return the tools.

    Raises :class:`LabUnavailable` with one line naming what is missing and how
    to get it, or :class:`ConfigError` when ``clock-offset`` cannot be applied.
    """
    if not sys.platform.startswith("linux"):
        raise _unavailable("it needs Linux (network and time namespaces, TUN devices)")
    caps = _capabilities()
    if not (caps >> _CAP_NET_ADMIN & 1 and caps >> _CAP_SYS_ADMIN & 1):
        raise _unavailable(
            "it needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) for namespaces and TUN devices; "
            "run it with sudo, or in a container with --cap-add NET_ADMIN --cap-add SYS_ADMIN "
            "--device /dev/net/tun"
        )
    if not Path("/proc/self/ns/net").exists():
        raise _unavailable("the kernel has no network namespaces (CONFIG_NET_NS)")
    ip = shutil.which("ip")
    if ip is None:
        raise _unavailable("the `ip` command is missing: apt-get install iproute2")
    if not Path("/dev/net/tun").exists():
        raise _unavailable(
            "/dev/net/tun is missing; load the tun module (modprobe tun), "
            "or give the container --device /dev/net/tun"
        )
    try:
        os.close(os.open("/dev/net/tun", os.O_RDWR))
    except OSError as exc:
        raise _unavailable(
            f"cannot open /dev/net/tun ({exc.strerror}); run as root with the tun module loaded"
        ) from None
    if spec.clock_offset and not Path("/proc/self/ns/time_for_children").exists():
        raise _unavailable(
            "clock-offset needs time namespaces, which this kernel lacks "
            "(CONFIG_TIME_NS, Linux >= 5.6)"
        )
    if spec.clock_offset:
        uptime = time.clock_gettime(time.CLOCK_MONOTONIC)
        if uptime + spec.clock_offset <= 1.0:
            raise ConfigError(
                "link.clock-offset",
                f"{spec.clock_offset:g}s would make host b's monotonic clock negative "
                f"(this machine has been up {uptime:.0f} s)",
            )
    return Tools(ip=ip, setpriv=shutil.which("setpriv"))


def _run(argv: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        list(argv), capture_output=True, text=True, check=False, timeout=_COMMAND_TIMEOUT_S
    )
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise LabError(f"`{' '.join(argv)}` failed: {detail[-1] if detail else proc.returncode}")
    return proc


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def list_namespaces(ip: str) -> list[str]:
    """Names of the named network namespaces (``ip netns list``)."""
    out = _run([ip, "netns", "list"]).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _kill_namespace_processes(ip: str, namespace: str) -> None:
    proc = _run([ip, "netns", "pids", namespace], check=False)
    for word in proc.stdout.split():
        with contextlib.suppress(ValueError, ProcessLookupError, PermissionError):
            os.kill(int(word), signal.SIGKILL)


def _delete_namespace(ip: str, namespace: str) -> None:
    _kill_namespace_processes(ip, namespace)
    proc = _run([ip, "netns", "delete", namespace], check=False)
    if proc.returncode != 0 and namespace in list_namespaces(ip):
        raise LabError(f"cannot delete network namespace {namespace}: {proc.stderr.strip()}")


def clean_stale(ip: str, prefix: str = DEFAULT_PREFIX) -> list[str]:
    """Delete ``<prefix>-<pid>-<n>-a|b`` namespaces whose owner pid is dead.

    Returns the deleted names. Namespaces of live processes (other labs running
    in parallel) are left alone; so is anything not matching the pattern.
    """
    pattern = re.compile(rf"^{re.escape(prefix)}-(\d+)-\d+-[ab]$")
    deleted = []
    for name in list_namespaces(ip):
        match = pattern.match(name)
        if match and not _pid_alive(int(match.group(1))):
            _delete_namespace(ip, name)
            deleted.append(name)
    return deleted


def _open_tun(name: str) -> int:
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, _TUNSETIFF, struct.pack("16sH22x", name.encode(), _IFF_TUN | _IFF_NO_PI))
    except OSError:
        os.close(fd)
        raise
    return fd


def _python_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: ours) with this imgbench first on PYTHONPATH, so helper
    programs run the same code as the lab whether or not it is installed."""
    merged = dict(os.environ if env is None else env)
    root = str(Path(imgbench.__file__).resolve().parent.parent)
    merged["PYTHONPATH"] = os.pathsep.join(p for p in (root, merged.get("PYTHONPATH")) if p)
    return merged


class Lab:
    """Two hosts joined by an emulated link; use as ``async with Lab(spec) as lab``.

    ``prefix`` names the namespaces (``<prefix>-<pid>-<n>-a|b``); ``grace`` is
    how long, in seconds, spawned programs get between SIGTERM and SIGKILL at
    cleanup.
    """

    def __init__(self, spec: LinkSpec, *, prefix: str = DEFAULT_PREFIX, grace: float = 2.0) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9]{0,15}", prefix):
            raise ConfigError("lab prefix", f"{prefix!r} must be 1-16 lowercase letters/digits")
        self.spec = spec
        self.prefix = prefix
        self.grace = grace
        n = next(_counter)
        pid = os.getpid()
        self._namespaces: dict[Host, str] = {h: f"{prefix}-{pid}-{n}-{h}" for h in HOSTS}
        # Interface names live briefly in the root namespace: unique there, <= 15 chars.
        self._interfaces: dict[Host, str] = {h: f"ib{pid}.{n % 1000}{h}" for h in HOSTS}
        self._tools: Tools | None = None
        self._created: list[str] = []
        self._forwarder: subprocess.Popen[str] | None = None
        self._processes: list[asyncio.subprocess.Process] = []
        self._task: asyncio.Task[Any] | None = None
        self._sigterm_installed = False
        self._terminated = False
        self.link_stats: dict[str, dict[str, int]] | None = None
        """The forwarder's counters per direction (``a_to_b``, ``b_to_a``), set on close."""

    # -- addresses -----------------------------------------------------------------

    def address(self, host: Host) -> str:
        """IPv4 address of ``host`` on the link."""
        return ADDRESSES[host]

    def namespace(self, host: Host) -> str:
        """Name of ``host``'s network namespace (for ``ip netns exec``)."""
        return self._namespaces[host]

    def interface(self, host: Host) -> str:
        """Name of ``host``'s end of the link (a TUN device in its namespace)."""
        return self._interfaces[host]

    @property
    def forwarder_pid(self) -> int | None:
        """Process id of the link forwarder while the lab runs."""
        return None if self._forwarder is None else self._forwarder.pid

    # -- lifecycle -----------------------------------------------------------------

    async def __aenter__(self) -> Lab:
        try:
            self._start()
            self._install_sigterm()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _start(self) -> None:
        tools = self._tools = preflight(self.spec)
        ip = tools.ip
        clean_stale(ip, self.prefix)
        fds: list[int] = []
        try:
            for host in HOSTS:
                ns, dev = self._namespaces[host], self._interfaces[host]
                _run([ip, "netns", "add", ns])
                self._created.append(ns)
                _run([ip, "-n", ns, "link", "set", "lo", "up"])
                # No IPv6: the link should carry only what the measured programs send.
                _run([ip, "netns", "exec", ns, "sh", "-c",
                      "for f in /proc/sys/net/ipv6/conf/all/disable_ipv6 "
                      "/proc/sys/net/ipv6/conf/default/disable_ipv6; "
                      "do [ -w $f ] && echo 1 > $f; done; true"])  # fmt: skip
                fds.append(_open_tun(dev))
                _run([ip, "link", "set", dev, "netns", ns])
                _run([ip, "-n", ns, "link", "set", dev, "mtu", str(self.spec.mtu),
                      "txqueuelen", str(TUN_TXQUEUELEN), "up"])  # fmt: skip
                peer = ADDRESSES["b" if host == "a" else "a"]
                _run([ip, "-n", ns, "addr", "add", ADDRESSES[host], "peer", peer, "dev", dev])
            self._forwarder = subprocess.Popen(
                [sys.executable, "-m", "imgbench.lab.link", "--fd-a", str(fds[0]),
                 "--fd-b", str(fds[1]), "--spec-json", json.dumps(_spec_dict(self.spec))],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                pass_fds=fds, start_new_session=True, env=_python_env(),
            )  # fmt: skip
        finally:
            # The forwarder holds its own copies; the devices live as long as it does.
            for fd in fds:
                os.close(fd)
        _prefer_forwarder(self._forwarder.pid)
        assert self._forwarder.stdout is not None
        ready = self._forwarder.stdout.readline()
        if ready.strip() != "ready":
            raise LabError(f"link forwarder failed to start (exit {self._forwarder.poll()})")

    def _install_sigterm(self) -> None:
        # Only where SIGTERM still has its default action: a program with its own
        # handler keeps control (and exits through our __aexit__ its own way).
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return
        with contextlib.suppress(RuntimeError, ValueError, NotImplementedError):
            loop = asyncio.get_running_loop()
            self._task = asyncio.current_task()
            loop.add_signal_handler(signal.SIGTERM, self._on_sigterm)
            self._sigterm_installed = True

    def _on_sigterm(self) -> None:
        self._terminated = True
        if self._task is not None:
            self._task.cancel()

    async def close(self) -> None:
        """Kill the spawned programs, stop the link, delete the namespaces (idempotent).

        Every step is attempted even if an earlier one fails; the first failure is
        raised afterwards as :class:`LabError`.
        """
        failures: list[str] = []
        for proc in self._processes:
            try:
                await _terminate(proc, self.grace)
            except Exception as exc:  # keep cleaning, report after
                failures.append(f"stopping pid {proc.pid}: {exc}")
        self._processes.clear()
        if self._forwarder is not None:
            try:
                self.link_stats = _stop_forwarder(self._forwarder, self.grace)
            except Exception as exc:
                failures.append(f"stopping the link forwarder: {exc}")
            self._forwarder = None
        if self._tools is not None:
            for ns in reversed(self._created):
                try:
                    _delete_namespace(self._tools.ip, ns)
                except Exception as exc:
                    failures.append(str(exc))
        self._created.clear()
        if self._sigterm_installed:
            self._sigterm_installed = False
            with contextlib.suppress(RuntimeError):
                asyncio.get_running_loop().remove_signal_handler(signal.SIGTERM)
        if self._terminated:
            # Cleanup done: SIGTERM now does what it would have done without us.
            self._terminated = False
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.raise_signal(signal.SIGTERM)
        if failures:
            raise LabError("lab cleanup incomplete: " + "; ".join(failures))

    # -- programs ------------------------------------------------------------------

    def command(self, host: Host, argv: Sequence[str]) -> list[str]:
        """The full command line that runs ``argv`` on ``host``."""
        if self._tools is None:
            raise LabError("the lab is not running (use `async with Lab(spec) as lab`)")
        cmd = [self._tools.ip, "netns", "exec", self._namespaces[host]]
        if self._tools.setpriv is not None:
            cmd += [self._tools.setpriv, "--pdeathsig", "KILL", "--"]
        if host == "b" and self.spec.clock_offset:
            offset = repr(self.spec.clock_offset)
            cmd += [sys.executable, "-m", "imgbench.lab.timens", offset, "--"]
        return cmd + list(argv)

    async def spawn(
        self,
        host: Host,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        stdin: int | IO[Any] | None = subprocess.DEVNULL,
        stdout: int | IO[Any] | None = subprocess.PIPE,
        stderr: int | IO[Any] | None = subprocess.PIPE,
        start_new_session: bool = False,
    ) -> asyncio.subprocess.Process:
        """Start ``argv`` on ``host``; the lab kills it at cleanup if still running.

        ``env`` is the program's whole environment (default: ours), with this
        imgbench put first on PYTHONPATH. ``sys.executable`` runs this Python.
        ``start_new_session`` keeps a terminal's Ctrl-C from reaching it: the lab
        owner, interrupted, stops it at cleanup instead (SIGTERM).
        """
        proc = await asyncio.create_subprocess_exec(
            *self.command(host, argv), env=_python_env(env), cwd=cwd,
            stdin=stdin, stdout=stdout, stderr=stderr, start_new_session=start_new_session,
        )  # fmt: skip
        self._processes.append(proc)
        return proc

    async def run(
        self, host: Host, argv: Sequence[str], *, timeout: float = 60.0
    ) -> tuple[int, str, str]:
        """Run ``argv`` on ``host`` to completion: (exit code, stdout, stderr).

        Raises :class:`LabError` if it does not finish within ``timeout`` seconds.
        """
        proc = await self.spawn(host, argv)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            raise LabError(f"{argv[0]} on host {host} did not finish in {timeout:g} s") from None
        assert proc.returncode is not None
        return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def _spec_dict(spec: LinkSpec) -> dict[str, object]:
    return {name: getattr(spec, name) for name in LinkSpec.__dataclass_fields__}


async def _terminate(proc: asyncio.subprocess.Process, grace: float) -> None:
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), grace)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await asyncio.wait_for(proc.wait(), grace)


#: Real-time priority of the link forwarder (SCHED_RR, 1-99). The link stands for
#: a wire and routers that do not share CPUs with the two hosts' programs; on a
#: busy machine a time-shared forwarder is starved by the very processes being
#: measured, and its delay and pacing drift (seen here: a 20 ms RTT read as 23 ms
#: at load 8 on 2 cores). The forwarder blocks in ``select`` between packets, and
#: the kernel's RT throttling (``sched_rt_runtime_us``) still caps it, so a modest
#: real-time priority cannot lock up the machine.
FORWARDER_RT_PRIORITY = 10


def _prefer_forwarder(pid: int) -> bool:
    """Give the forwarder real-time priority where allowed; False where refused."""
    try:
        os.sched_setscheduler(pid, os.SCHED_RR, os.sched_param(FORWARDER_RT_PRIORITY))
    except (OSError, AttributeError):
        # Unprivileged or no RT scheduling: the link still works, only less
        # isolated from load; its own measured baseline shows the effect.
        return False
    return True


def _stop_forwarder(proc: subprocess.Popen[str], grace: float) -> dict[str, dict[str, int]] | None:
    try:
        # communicate() closes its stdin: the forwarder's signal to stop.
        out, _ = proc.communicate(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return None
    lines = out.strip().splitlines()
    if not lines:
        return None
    stats: dict[str, dict[str, int]] = json.loads(lines[-1])
    return stats
