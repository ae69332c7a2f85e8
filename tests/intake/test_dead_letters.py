"""Dead letters hold the exact bytes that failed, and the same bytes twice are one letter with a count."""

from __future__ import annotations

import base64
import hashlib
import sqlite3
from pathlib import Path

import orjson
import pytest

from corral.pipeline import Inbound, Pipeline
from corral.stores import migrations, open_store
from corral.stores.base import DeadLetter, Store

NOW = 1_800_000_000_000

# Bytes a re-serialization would change: a duplicate key, a trailing zero, an escaped é, spacing.
ODD = b'{"kind": "unknown", "kind": "twice",  "price": 1.50, "name": "caf\\u00e9"}'


def ingest(store: Store, *inbound: Inbound) -> int:
    """Ingest and return how many records failed."""
    return Pipeline(store, clock=lambda: NOW).ingest(list(inbound)).failed


def test_an_array_element_is_kept_as_its_own_slice_of_the_input(store: Store) -> None:
    """An Event Hubs body (JSON array) with one bad element: the letter is that element's bytes, byte for byte."""
    body = b'[ {"hello": 1},\n  ' + ODD + b' , {"other": [1.0, 2]} ]'
    assert ingest(store, Inbound(body, "eventhub:7")) == 3
    raws = sorted(letter.raw for letter in store.dead_letters())
    assert raws == sorted([b'{"hello": 1}', ODD, b'{"other": [1.0, 2]}'])


def test_a_broken_envelope_is_kept_as_the_transport_body(store: Store) -> None:
    """An SQS body that is not JSON, and Pub/Sub data that is not JSON: each letter is that message's body."""
    sqs_body = '{"detail": "cut'
    batch = {
        "Records": [
            {"messageId": "m1", "eventSource": "aws:sqs", "body": sqs_body},
            {"messageId": "m2", "eventSource": "aws:sqs", "body": ODD.decode()},
        ]
    }
    decoded = b'{"finding": \xff}'
    push = {"message": {"data": base64.b64encode(decoded).decode(), "messageId": "p1"}, "subscription": "s"}
    assert ingest(store, Inbound(orjson.dumps(batch), "sqs"), Inbound(orjson.dumps(push), "push")) == 3
    raws = {letter.raw for letter in store.dead_letters()}
    assert raws == {sqs_body.encode(), ODD, decoded}


def test_a_parsed_delivery_from_a_file_keeps_the_line_bytes(store: Store) -> None:
    """The CLI hands over parsed JSON with its raw line: the letter is the line, not a re-serialization."""
    assert ingest(store, Inbound(orjson.loads(ODD), "file#3", raw=ODD)) == 1
    [letter] = store.dead_letters()
    assert letter.raw == ODD
    assert letter.sha256 == hashlib.sha256(ODD).hexdigest()


def test_the_same_bytes_twice_are_one_dead_letter_with_a_count(store: Store) -> None:
    """Ingesting the same bad input again counts it; other bytes are other letters."""
    assert ingest(store, Inbound(ODD, "a")) == 1
    assert ingest(store, Inbound(ODD, "b"), Inbound(ODD, "c")) == 2
    assert ingest(store, Inbound(ODD + b" ", "d")) == 1
    letters = {letter.raw: letter for letter in store.dead_letters()}
    assert set(letters) == {ODD, ODD + b" "}
    assert letters[ODD].count == 3
    assert letters[ODD + b" "].count == 1
    assert store.count_dead_letters() == {"": 4}
    again = store.dead_letter(letters[ODD].id or "")
    assert again is not None
    assert again.count == 3


@pytest.mark.parametrize("batches", [[2], [1, 1, 1], [3, 2]])
def test_counts_add_up_within_and_across_batches(store: Store, batches: list[int]) -> None:
    """Duplicates within one write and across writes all count."""
    for size in batches:
        store.add_dead_letters([DeadLetter.of(b"same", at=NOW, reason="r", ref="x") for _ in range(size)])
    [letter] = store.dead_letters()
    assert letter.count == sum(batches)


def test_existing_duplicate_letters_are_merged_by_the_migration(tmp_path: Path) -> None:
    """A store written before letters were counted: its duplicates become one letter with their count."""
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.execute(migrations.SCHEMA_TABLE_SQLITE)
    for step in migrations.MIGRATIONS[:2]:
        for statement in step.statements("sqlite"):
            db.execute(statement)
        db.execute("INSERT INTO schema_migrations VALUES (?, ?, 0)", (step.version, step.description))
    letter = DeadLetter.of(ODD, at=NOW, reason="r", ref="x")
    for _ in range(3):
        db.execute(
            "INSERT INTO dead_letters (at, reason, ref, raw, sha256, size) VALUES (?, ?, ?, ?, ?, ?)",
            (letter.at, letter.reason, letter.ref, letter.raw, letter.sha256, letter.size),
        )
    db.commit()
    db.close()
    store = open_store(f"sqlite:///{path}")
    try:
        store.migrate()
        [merged] = store.dead_letters()
        assert (merged.raw, merged.count) == (ODD, 3)
    finally:
        store.close()
