"""Samples and figures, statistics, clock offset estimation, schedules."""
