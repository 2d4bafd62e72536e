"""The panels of the imgbench dashboard, one module per row, and what they share.

``queries`` (the data source, job selectors, the direction matcher, the Prometheus
target), ``style`` (protocol colours and the overrides, thresholds, legend and
tooltip every panel uses), then one module per row, top to bottom: ``last_run``,
``statistics``, ``over_time``, ``resources``; each has ``TITLE`` and ``panels()``.
``grafana/dashboard.py`` assembles them and writes the JSON.
"""
