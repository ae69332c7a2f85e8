"""A configuration file full of mistakes: each mistake is its own line, all reported in one run.

Every line names the file and the key, and a close typo gets a "did you mean".
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from corral import config, sinks
from corral.errors import ConfigError

MISTAKES = """
store = "postgresql://corral:hunter2@db.internal/corral"
sink = "typo of sinks"

[sinks."splunk_hec:main"]
url = "https://splunk.example:8088"
token_env = "HEC_TOKEN"
tiemout = 5

[sinks."file:archive"]
path = "findings.jsonl"
formt = "jsonl"

[sinks."elastic:siem"]
url = "https://es.example:9200"
api_key_env = "ES_KEY"
indx = "findings"

[sinks."slack:soc"]
token_env = "SLACK_TOKEN"
chanel = "C0123456"

[sinks."teams:ops"]
webhook_url_env = "TEAMS_URL"
min_intervall = 1

[sinks."sentinel:soc"]
endpoint = "https://dce.example.ingest.monitor.azure.com"
rule = "dcr-00112233445566778899aabbccddeeff"

[sinks."syslog:siem"]
host = "siem.example"
protocol = "tcp"

[sinks."relay:hub"]
topik = "projects/p/topics/t"

[sinks."webhook:soar"]
url = "https://soar.example/hook"
secret_env = "HOOK_SECRET"
api_key = "k-123"

[sinks."pager:x"]
url = "https://pager.example"

[[routes]]
name = "urgent"
to = ["slack:soc", "slack:nowhere"]

[[suppress]]
name = "old scanner"
when = { cluster = "scanner" }
reason = "scanner subnet"
until = 2020-01-01

[retention]
closed_dayz = 90

[sources]
"aws.gaurdduty" = 60
"""

EXPECTED = [
    ("store", "password is written in the store URL", "CORRAL_STORE"),
    ("unknown key 'sink'", "did you mean 'sinks'?"),
    ("sinks.splunk_hec:main.tiemout", "did you mean 'timeout'?"),
    ("sinks.file:archive.formt", "did you mean 'format'?"),
    ("sinks.elastic:siem.indx", "did you mean 'index'?"),
    ("sinks.slack:soc.chanel", "did you mean 'channel'?"),
    ("sinks.teams:ops.min_intervall", "did you mean 'min_interval'?"),
    ("sinks.sentinel:soc.rule", "did you mean 'rule_id'?"),
    ("sinks.syslog:siem.protocol", "unknown setting"),
    ("sinks.relay:hub.topik", "did you mean 'topic'?"),
    ("sinks.webhook:soar.api_key", "api_key_env"),
    ("sinks.pager:x.kind", "unknown sink kind 'pager'"),
    ("routes[0] (urgent).to", "'slack:nowhere'"),
    ("suppress[0] (old scanner).until", "2020-01-01 has passed", "delete it"),
    ("retention.closed_dayz", "did you mean 'closed_days'?"),
    ("sources.aws.gaurdduty", "did you mean 'aws.guardduty'?"),
]


@pytest.fixture
def mistakes(tmp_path: Path) -> Path:
    """The file of mistakes, as corral.toml."""
    path = tmp_path / "corral.toml"
    path.write_text(MISTAKES)
    return path


def test_every_mistake_is_its_own_line_in_one_run(mistakes: Path) -> None:
    """One load reports all sixteen mistakes, one line each, each naming the file and the key."""
    with pytest.raises(ConfigError) as raised:
        config.load(str(mistakes), {})
    lines = str(raised.value).splitlines()
    for line in lines:
        assert line.startswith(f"{mistakes}: "), line
    for words in EXPECTED:
        matching = [line for line in lines if all(w in line for w in words)]
        assert len(matching) == 1, (words, lines)
    assert len(lines) == len(EXPECTED), "\n".join(lines)
    assert "hunter2" not in str(raised.value)


def test_the_cli_prints_every_mistake_and_no_traceback(mistakes: Path) -> None:
    """`corral ingest` with the file prints one `corral: error:` line per mistake and exits 1."""
    done = subprocess.run(
        [sys.executable, "-m", "corral.cli", "ingest", "--config", str(mistakes), "-"],
        input="",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert len(lines) == len(EXPECTED), done.stderr
    assert all(line.startswith(f"corral: error: {mistakes}: ") for line in lines)
    assert "hunter2" not in done.stderr


@pytest.mark.parametrize("kind", sorted(sinks.KINDS))
def test_every_kind_rejects_an_unknown_setting_with_a_suggestion(kind: str) -> None:
    """Each sink kind's typo of its first setting is reported, through config and through build alike."""
    first = sorted(set(sinks.declared_settings(kind)) - {"kind"})[0]
    typo = first[:-1] + first[-1] * 2
    table = {"sinks": {f"{kind}:x": {typo: "x"}}}
    with pytest.raises(ConfigError) as raised:
        config.parse(table, "corral.toml")
    assert f"corral.toml: sinks.{kind}:x.{typo}: unknown setting (did you mean {first!r}?)" in str(raised.value)
    with pytest.raises(ConfigError, match=f"sinks.{kind}:x.{typo}: unknown setting"):
        sinks.build(f"{kind}:x", {typo: "x"}, {})


def test_sink_build_errors_name_the_file_and_come_together(tmp_path: Path) -> None:
    """Sinks that cannot be built (a missing variable, a bad value) are all reported, each with the file."""
    path = tmp_path / "corral.toml"
    path.write_text(
        '[sinks."splunk_hec:main"]\nurl = "https://splunk.example"\ntoken_env = "NOT_SET"\n'
        '[sinks."file:archive"]\npath = "x.jsonl"\nformat = "xml"\n'
    )
    settings = config.load(str(path), {})
    with pytest.raises(ConfigError) as raised:
        sinks.build_all(settings.sinks, {}, settings.origin)
    lines = str(raised.value).splitlines()
    assert len(lines) == 2
    assert all(line.startswith(f"{path}: sinks.") for line in lines)
    assert any("splunk_hec:main.token_env" in line and "NOT_SET" in line for line in lines)
    assert any("file:archive.format" in line for line in lines)


def test_only_a_past_until_is_a_mistake() -> None:
    """The same suppression loads while its `until` is ahead, and is refused once it has passed."""
    table = {"suppress": [{"when": {"cluster": "x"}, "reason": "r", "until": dt.date(2020, 1, 1)}]}
    [rule] = config.parse(table, now=1_500_000_000).router.suppressions
    assert rule.until == 1_577_836_800_000
    with pytest.raises(ConfigError, match=r"suppress\[0\] \(suppress\[0\]\)\.until: 2020-01-01 has passed"):
        config.parse(table, now=1_577_836_800)


def test_store_password_outside_the_file_is_fine() -> None:
    """The same URL from CORRAL_STORE (a secret) is accepted: only the file must not hold it."""
    settings = config.load(None, {"CORRAL_STORE": "postgresql://corral:pw@db/corral"})
    assert settings.store == "postgresql://corral:pw@db/corral"


@pytest.mark.parametrize(
    ("store", "refused"),
    [
        ("postgresql://corral:pw@db/corral", True),
        ("postgresql://corral@db/corral?password=pw", True),
        ("postgresql://corral@db/corral?sslpassword=pw&sslkey=/etc/corral/client.key", True),
        ("dynamodb://corral?region=eu-west-1&endpoint=http://AK:SK@localstack:4566", True),
        ("postgresql://corral@db/corral?sslmode=verify-full&sslkey=/etc/corral/client.key", False),
        ("postgresql://corral@db/corral", False),
        ("dynamodb://corral?region=eu-west-1", False),
    ],
)
def test_only_a_written_password_in_the_store_url_is_refused(store: str, refused: bool) -> None:
    """A password (or an endpoint's credentials) in the file's store URL is refused; a key file path is not."""
    if refused:
        with pytest.raises(ConfigError, match="password is written in the store URL"):
            config.parse({"store": store}, "corral.toml")
    else:
        assert config.parse({"store": store}, "corral.toml").store == store


@pytest.mark.parametrize(
    ("kind", "url"),
    [
        ("elastic", "https://elastic:changeme@es.example.com:9200"),
        ("splunk_hec", "https://admin:pw@splunk.example.com:8088"),
        ("webhook", "https://hooks.example.com/in?api_key=SECRET123"),
    ],
)
def test_a_credential_in_a_sink_url_is_refused(kind: str, url: str) -> None:
    """Secrets are never written in corral.toml: not as a setting, not inside a URL either."""
    with pytest.raises(ConfigError, match=rf"sinks\.{kind}:x\.url: a credential is written in the URL") as caught:
        config.parse({"sinks": {f"{kind}:x": {"url": url}}})
    assert "changeme" not in str(caught.value) and "SECRET123" not in str(caught.value)


def test_a_config_file_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    """TOML is UTF-8: a file that is not says so, naming the file."""
    path = tmp_path / "corral.toml"
    path.write_bytes(b'store = "\xff\xfe"\n')
    with pytest.raises(ConfigError, match=r"corral\.toml: not valid TOML: the file is not UTF-8 text"):
        config.load(str(path))
