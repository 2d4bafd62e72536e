"""``python -m transmitter``: the same as ``imgbench transmitter``."""

import sys

from imgbench.cli import main

raise SystemExit(main(["transmitter", *sys.argv[1:]]))
