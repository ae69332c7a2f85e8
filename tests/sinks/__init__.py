"""Tests of the sinks; their shared helpers are in tests/support/sinks.py."""
