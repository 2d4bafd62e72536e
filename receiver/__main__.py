"""``python -m receiver``: the same as ``imgbench receiver``."""

import sys

from imgbench.cli import main

raise SystemExit(main(["receiver", *sys.argv[1:]]))
