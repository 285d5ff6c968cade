"""Shared constants and helpers of the client tests (imported by conftest.py and the test modules)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pytest_scriptum.client._base import ClientBase

SEED = Path(__file__).parent / "seed"
TOKEN = "tok-client-acme-6c1f0b2e"
ORG = "acme"
OTHER_TOKEN = "tok-client-globex-93d7a4"
OTHER_ORG = "globex"
TRANSPORTS = ["grpc", "http"]


ClientFactory = Callable[..., ClientBase]
