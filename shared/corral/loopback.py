"""The names of this machine: plaintext sent to them never crosses a network.

The one list behind every rule that admits plaintext only to loopback: the HTTP sinks' http://
endpoints, the relay sinks' SQS endpoint and Pub/Sub emulator, and a PostgreSQL store reached
without TLS. Its own module, so that the store reads it without loading the HTTP transport.
"""

from __future__ import annotations

from typing import Final

LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "::1"})
