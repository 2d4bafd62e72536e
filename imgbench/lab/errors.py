"""Errors of the two-host lab, in imgbench's one exception tree.

::

    ImgbenchError
    └── LabError              a lab operation failed (names the command and why)
        └── LabUnavailable    this machine cannot run the lab; says what is
                              missing and how to get it, in one line

A bad SPEC value is a :class:`~imgbench.errors.ConfigError` (``link.<key>``),
raised by :mod:`imgbench.lab.spec`. The CLI exits 2 on LabUnavailable and on
ConfigError, printing ``str(exc)``.
"""

from __future__ import annotations

from imgbench.errors import ImgbenchError


class LabError(ImgbenchError):
    """A lab operation (namespace, link, process) failed; the message is one line."""


class LabUnavailable(LabError):
    """The lab cannot run here: one line saying what is missing and how to get it."""
