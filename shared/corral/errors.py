"""Every error Corral raises, in two families: permanent (dead-letter and go on) and retryable.

Entry points map the families to their platform's retry semantics; nothing else catches broadly.
"""

from __future__ import annotations


class CorralError(Exception):
    """Base class for every error Corral raises."""


class ConfigError(CorralError):
    """The configuration is invalid; raised at start-up, before the first event."""


class PermanentError(CorralError):
    """Retrying cannot help: record in the dead letter, acknowledge, carry on."""


class MalformedEventError(PermanentError):
    """The input is not valid JSON, or not the shape its source documents."""


class UnsupportedSourceError(PermanentError):
    """The input is well-formed but no source recognizes it."""


class SinkRejectedError(PermanentError):
    """A sink refused our payload (4xx other than 429)."""


class RetryableError(CorralError):
    """Transient: the platform (or a redrive) should try again."""


class StoreUnavailableError(RetryableError):
    """The central store cannot be reached or refused the write for a transient reason."""


class SinkUnavailableError(RetryableError):
    """A sink timed out, answered 5xx or 429; `retry_after` is its hint in seconds, if any."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
