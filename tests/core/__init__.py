"""Unit tests for Corral's core modules, and the JSON strategies they share."""

from __future__ import annotations

import base64

import orjson
from hypothesis import strategies as st

from corral import envelopes

# Keys and texts that steer generated values into the envelope shapes `unwrap` detects.
SHAPED_KEYS = st.sampled_from(
    [
        "Records",
        "eventSource",
        "body",
        "message",
        "data",
        "detail",
        "detail-type",
        "source",
        "region",
        "specversion",
        "type",
        "value",
        "records",
        "Findings",
        "listFindingsResults",
        "publishTime",
        "id",
        "metadata",
        "class_uid",
        "finding_info",
        "version",
    ]
)
SHAPED_TEXT = st.sampled_from(
    [
        "aws:sqs",
        envelopes.PUBSUB_PUBLISHED,
        "GuardDuty Finding",
        "1.0",
        "1.8.0",
        "{}",
        "[]",
        "e30=",
        "2025-05-01T10:00:00Z",
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
    | SHAPED_TEXT
)


def _containers(children: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    # A named function: Hypothesis inspects a lambda's source, which fails in some runs.
    return st.lists(children, max_size=4) | st.dictionaries(SHAPED_KEYS | st.text(max_size=5), children, max_size=5)


JSON = st.recursive(
    SCALARS,
    _containers,
    max_leaves=20,
)
"""Any JSON value (as orjson would parse it), biased towards envelope keys."""

SQS_BATCH = st.lists(
    st.builds(
        lambda body: {"eventSource": "aws:sqs", "messageId": "m", "body": body},
        st.text() | JSON.map(lambda v: orjson.dumps(v).decode()),
    ),
    min_size=1,
    max_size=3,
).map(lambda records: {"Records": records})
PUSH = st.builds(
    lambda data, published: {"message": {"data": data, "publishTime": published}},
    JSON.map(lambda v: base64.b64encode(orjson.dumps(v)).decode()) | JSON,
    JSON,
)
CLOUDEVENT = PUSH.map(lambda p: {"specversion": "1.0", "type": envelopes.PUBSUB_PUBLISHED, "data": p})
DELIVERIES = JSON | SQS_BATCH | PUSH | CLOUDEVENT
"""Any JSON value, or one inside an SQS batch, a Pub/Sub push body or a CloudEvent."""
