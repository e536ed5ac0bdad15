"""Measuring what running code costs: harness programs that repeat a call, and their reports."""
