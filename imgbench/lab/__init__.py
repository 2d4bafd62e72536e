"""The two-host network lab: two namespaces joined by an emulated link.

``spec`` (pure) parses the ``--link`` SPEC; ``link`` is the packet forwarder
that emulates delay, jitter, rate and loss between two TUN devices; ``hosts``
makes the namespaces and runs programs in them; ``baseline`` and ``probe``
measure what the emulated link really does.

Usage::

    async with Lab(parse_link("rtt=40ms,rate=100mbit")) as lab:
        proc = await lab.spawn("b", [sys.executable, "-m", "receiver"])
        ...  # connect to lab.address("b") from a program spawned on "a"
"""

from imgbench.lab.errors import LabError, LabUnavailable
from imgbench.lab.hosts import Lab, clean_stale, preflight
from imgbench.lab.spec import LinkSpec, parse_link

__all__ = [
    "Lab",
    "LabError",
    "LabUnavailable",
    "LinkSpec",
    "clean_stale",
    "parse_link",
    "preflight",
]
