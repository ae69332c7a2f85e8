"""The read-only dashboard: a server-rendered page, its JSON API, and the same page as a report file."""

from typing import Final

# Here rather than in `server`, so that the command line can show them without loading the server.
DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 8321
