"""The paired baseline (issue 16) on the assist seed (``kit.fixtures.assist``)."""

from kit.fixtures.assist import platform  # noqa: F401
