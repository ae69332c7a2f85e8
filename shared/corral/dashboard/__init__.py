"""The read-only dashboard: a server-rendered page, its JSON API, and the same page as a report file."""
