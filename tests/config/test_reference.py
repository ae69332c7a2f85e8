"""docs/configuration.md is generated from the sinks' declarations, and the declarations are what the sinks read."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from corral import sinks
from corral.sinks import reference
from tests.support.fake_http import TlsFiles, make_tls

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "configuration.md"


def test_reference_page_matches_the_declarations() -> None:
    """The committed page is exactly what the declarations generate (regenerate it when a setting changes)."""
    assert PAGE.read_text() == reference.render(), (
        "docs/configuration.md is stale: run `python -m corral.sinks.reference > docs/configuration.md`"
    )


def test_every_kind_and_setting_is_on_the_page() -> None:
    """Each sink kind has its section, and each declared setting its row."""
    page = PAGE.read_text()
    for kind in sinks.KINDS:
        section = page.split(f"### `{kind}`\n", 1)[1].split("\n### ", 1)[0]
        for name in sinks.declared_settings(kind):
            assert f"| `{name}` |" in section, (kind, name)


class Recorder(Mapping[str, Any]):
    """A settings table that remembers every key the sink looked up (present or not)."""

    def __init__(self, table: Mapping[str, Any]) -> None:
        self.table = dict(table)
        self.looked_up: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        self.looked_up.add(key)
        return self.table[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.table)

    def __len__(self) -> int:
        return len(self.table)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A certificate and key, for the settings that name PEM files."""
    return make_tls(tmp_path_factory.mktemp("tls"))


def examples(tls: TlsFiles, tmp_path: Path) -> dict[str, list[dict[str, Any]]]:
    """Valid settings for every kind, one table per mode, using every setting the mode accepts."""
    cert = str(tls.cert)
    return {
        "slack": [
            {"token_env": "T", "channel": "C1", "api_url": "https://slack.example/api/", "timeout": 5,
             "min_interval": 0},
            {"kind": "slack", "webhook_url_env": "H"},
        ],
        "teams": [{"webhook_url_env": "H", "timeout": 5, "min_interval": 0}],
        "splunk_hec": [
            {"url": "https://splunk.example:8088", "token_env": "T", "index": "sec", "source": "corral",
             "sourcetype": "ocsf", "host": "h", "channel": str(uuid.uuid4()), "max_request_bytes": 2048,
             "timeout": 5, "ca_file": cert},
        ],
        "sentinel": [
            {"endpoint": "https://dce.example", "rule_id": "dcr-00112233445566778899aabbccddeeff",
             "stream": "Custom-CorralFindings_CL", "managed_identity_client_id": str(uuid.uuid4()), "timeout": 5,
             "ca_file": cert},
        ],
        "elastic": [
            {"url": "https://es.example:9200", "index": "findings", "api_key_env": "K", "max_request_bytes": 2048,
             "timeout": 5, "ca_file": cert},
        ],
        "syslog": [
            {"host": "127.0.0.1", "port": 6514, "transport": "tls", "ca_file": cert, "client_cert": cert,
             "client_key": str(tls.key), "server_name": "localhost", "app_name": "corral", "hostname": "h",
             "facility": "local4", "max_message": 2048, "timeout": 5},
            {"host": "127.0.0.1", "transport": "tcp"},
        ],
        "webhook": [
            {"url": "https://hooks.example/h", "secret_env": "S", "timeout": 5, "ca_file": cert},
            {"url_env": "U", "secret_env": "S"},
        ],
        "relay": [
            {"topic": "projects/corral-project/topics/corral-relay", "endpoint": "127.0.0.1:8085", "timeout": 5},
            {"queue_url": "https://sqs.eu-west-1.amazonaws.com/111122223333/q", "region": "eu-west-1",
             "endpoint_url": "http://127.0.0.1:1", "timeout": 5},
        ],
        "file": [{"path": str(tmp_path / "out.jsonl"), "format": "ocsf"}],
    }  # fmt: skip


ENV = {
    "T": "xoxb-0000-token",
    "H": "https://hooks.example/services/x",
    "K": "a2V5OnNlY3JldA==",
    "S": "0123456789abcdef0123",
    "U": "https://hooks.example/u",
}


@pytest.mark.parametrize("kind", sorted(sinks.KINDS))
def test_declared_settings_are_exactly_the_ones_read(
    kind: str, tls: TlsFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Building each mode of a kind looks up no undeclared setting, and every declared one is looked up."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "example")
    looked_up: set[str] = set()
    for table in examples(tls, tmp_path)[kind]:
        recorder = Recorder(table)
        sinks.build(f"{kind}:x", recorder, ENV).close()
        looked_up |= recorder.looked_up
    declared = set(sinks.declared_settings(kind))
    assert looked_up <= declared, f"read but not declared: {sorted(looked_up - declared)}"
    assert declared <= looked_up, f"declared but never read: {sorted(declared - looked_up)}"
