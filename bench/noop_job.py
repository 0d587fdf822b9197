"""A bare RQ job for the throughput baseline (no task tracking)."""

from __future__ import annotations


def noop() -> None:
    return None
