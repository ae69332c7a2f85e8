"""The parts every source is built on: the time parser, the image parser and the reader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral import traits
from corral.errors import MalformedEventError
from corral.normalize import normalize
from corral.sources._core import images, times
from corral.sources._core.reader import Fields

MS = 1_717_147_358_760  # 2024-05-31T09:22:38.760Z


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1_717_147_358, 1_717_147_358_000),  # seconds
        (1_717_147_358.76, MS),  # seconds with a fraction
        (MS, MS),  # milliseconds
        (MS * 1000, MS),  # microseconds (GuardDuty Runtime Protection health events)
        (MS * 1000 + 999, MS),
        (MS * 1_000_000 + 123_456, MS),  # nanoseconds
    ],
)
def test_epoch_numbers_are_read_by_magnitude(value: float, expected: int) -> None:
    assert times.epoch_ms(value) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2024-05-31T09:22:38.760Z",
        "2024-05-31T09:22:38.76Z",
        "2024-05-31T09:22:38.760123456Z",  # nanoseconds (SCC)
        "2024-05-31T11:22:38.760+02:00",
        "2024-05-31T04:22:38.7601234-05:00",  # seven digits and a negative offset (Defender)
        "2024-05-31T09:22:38.760+0000",
        "2024-05-31T09:22:38.760",  # no offset: UTC
    ],
)
def test_iso_8601_with_any_offset_and_up_to_nanoseconds(text: str) -> None:
    assert times.epoch_ms(text) == MS


@pytest.mark.parametrize(
    "value", [0, 86_400, 999_999_999_999, 10**13, 10**20, "1970-01-01T00:00:00Z", "2300-01-01T00:00:00Z"]
)
def test_one_plausibility_range_and_one_behaviour_outside_it(value: object) -> None:
    with pytest.raises(MalformedEventError, match="out of range"):
        times.epoch_ms(value, "createdAt")
    assert times.optional_ms(value) is None


@pytest.mark.parametrize("value", [True, -1, float("nan"), "yesterday", [], {}])
def test_what_is_not_a_time_raises_with_the_field_name(value: object) -> None:
    with pytest.raises(MalformedEventError, match=r"^updatedAt "):
        times.epoch_ms(value, "updatedAt")


@given(st.integers(min_value=times.MIN_MS, max_value=times.MAX_MS - 1))
def test_every_plausible_millisecond_reads_back_in_every_unit(millis: int) -> None:
    assert times.epoch_ms(millis) == millis
    assert times.epoch_ms(millis * 1000) == millis
    assert times.epoch_ms(millis * 1_000_000) == millis
    assert times.epoch_ms(millis // 1000) == millis // 1000 * 1000


DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("reference", "digest", "expected"),
    [
        ("reg.example/shop/web:1.2", DIGEST, {"uid": DIGEST, "name": "reg.example/shop/web", "tag": "1.2"}),
        (f"reg.example/shop/web:1.2@{DIGEST}", None, {"uid": DIGEST, "name": "reg.example/shop/web", "tag": "1.2"}),
        (f"reg.example/shop/web@{DIGEST}", None, {"uid": DIGEST, "name": "reg.example/shop/web"}),
        (
            "reg.example/shop/web:1.2",
            None,
            {"uid": "reg.example/shop/web:1.2", "name": "reg.example/shop/web", "tag": "1.2"},
        ),
        ("localhost:5000/web", None, {"uid": "localhost:5000/web", "name": "localhost:5000/web"}),
        (None, DIGEST, {"uid": DIGEST}),
        (None, None, None),
    ],
)
def test_one_image_shape(reference: str | None, digest: str | None, expected: object) -> None:
    assert images.image(reference, digest) == expected


def test_a_tag_reported_apart_from_the_repository_stands_in() -> None:
    assert images.image("reg.example/web", DIGEST, tag="v1") == {"uid": DIGEST, "name": "reg.example/web", "tag": "v1"}


def test_the_reader_leaves_what_it_did_not_map_and_bad_times_in_unmapped() -> None:
    doc = {"a": "x", "t": MS, "bad": "not a time", "nested": {"keep": 1, "take": "y"}, "empty": {}}
    fields = Fields(doc, {})
    assert fields.text("a") == "x"
    assert fields.time("t") == MS
    assert fields.optional_time("bad") is None
    assert fields.at("nested").text("take") == "y"
    assert fields.rest() == {"bad": "not a time", "nested": {"keep": 1}}
    assert doc["nested"] == {"keep": 1, "take": "y"}  # the document itself is never changed


GUARDDUTY = Path(__file__).resolve().parents[1] / "events" / "aws" / "guardduty"


def test_guardduty_health_event_in_microseconds_from_a_delegated_administrator() -> None:
    """Real Runtime Protection health events: `lastUpdatedAt` in epoch µs, member in `detail.accountId`."""
    event = json.loads((GUARDDUTY / "runtime-protection-unhealthy-eks-delegated-admin-microseconds.json").read_text())
    [outcome] = list(normalize(event))
    signal = outcome.signal
    assert signal is not None, outcome.error
    assert signal.time == MS
    assert signal.account_uid == "444455556666"  # not the envelope's delegated administrator 999988887777
    assert (signal.service, signal.healthy) == (traits.EKS, False)
    assert signal.detail == "EKS shop-prod: HEALTHY -> UNHEALTHY (EKS add-on deleted)"


def test_guardduty_finding_is_stored_under_its_member_account() -> None:
    event = json.loads((GUARDDUTY / "eks-runtime-newbinaryexecuted-eventbridge.json").read_text())
    event["account"] = "999988887777"  # delivered to the delegated administrator
    [outcome] = list(normalize(event))
    assert outcome.finding is not None, outcome.error
    assert outcome.finding["cloud"]["account"]["uid"] == event["detail"]["accountId"]


def test_guardduty_placeholder_geolocation_is_left_out() -> None:
    event = json.loads((GUARDDUTY / "eks-runtime-newbinaryexecuted-eventbridge.json").read_text())
    detail = event["detail"]
    detail["service"]["action"] = {
        "networkConnectionAction": {
            "connectionDirection": "OUTBOUND",
            "protocol": "TCP",
            "remoteIpDetails": {
                "ipAddressV4": "10.0.0.7",
                "city": {"cityName": "UNKNOWN"},
                "country": {"countryName": "UNKNOWN"},
                "geoLocation": {"lat": 0.0, "lon": 0.0},
                "organization": {"asn": "0", "asnOrg": "UNKNOWN", "isp": "UNKNOWN", "org": "UNKNOWN"},
            },
            "remotePortDetails": {"port": 443, "portName": "HTTPS"},
        }
    }
    [outcome] = list(normalize(event))
    assert outcome.finding is not None, outcome.error
    [remote] = [e["dst_endpoint"] for e in outcome.finding["evidences"] if "connection_info" in e]
    assert remote == {"ip": "10.0.0.7", "port": 443, "svc_name": "HTTPS"}
    kept = outcome.finding["unmapped"]["service"]["action"]["networkConnectionAction"]["remoteIpDetails"]
    assert kept["geoLocation"] == {"lat": 0.0, "lon": 0.0}  # kept as sent, not mapped
