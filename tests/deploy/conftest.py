"""The live services the artifact smoke test points its stores and sinks at."""

from __future__ import annotations

from tests.support.moto import moto_server
from tests.support.postgres import postgres_server
from tests.support.pubsub_emulator import pubsub_emulator
from tests.support.rsyslog import rsyslog_fixture

__all__ = ["moto_server", "postgres_server", "pubsub_emulator", "rsyslog_fixture"]
