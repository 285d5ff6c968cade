"""Repeated smoke cases (issue 16) on the flaky seed (``kit.fixtures.flaky``)."""

from kit.fixtures.flaky import counters, platform  # noqa: F401
