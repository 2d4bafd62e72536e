"""The two-host network lab: two namespaces joined by an emulated link."""

from imgbench.lab.errors import LabError, LabUnavailable
from imgbench.lab.spec import LinkSpec, parse_link

__all__ = ["LabError", "LabUnavailable", "LinkSpec", "parse_link"]
