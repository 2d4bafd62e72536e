"""``python -m benchmarks``: the harness measured against the raw-socket limit.

Not part of the unit tests. See :mod:`benchmarks.cli` for the command line and
``docs/performance.md`` for what each figure means.
"""
