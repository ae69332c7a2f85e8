"""Configuration: parsing a full corral.toml, every validation error, and store URL precedence."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from corral import config
from corral.errors import ConfigError
from corral.stores import DEFAULT_URL

FULL = """
store = "postgresql://corral@db/corral"

[sinks."slack:soc"]
kind = "slack"
token_env = "SLACK_BOT_TOKEN"
channel = "C0123456"

[sinks."splunk_hec:main"]
url = "https://splunk.example:8088"
token_env = "SPLUNK_HEC_TOKEN"

[sinks."file:archive"]
path = "findings.jsonl"

[[routes]]
name = "urgent"
when = { severity_at_least = "high", container_service = ["EKS", "AKS", "GKE"] }
on = ["new", "escalated", "reopened"]
to = ["slack:soc"]
samples = true

[[routes]]
to = ["splunk_hec:main", "file:archive"]

[[suppress]]
name = "scanner"
when = { type = "Recon:EC2/PortProbe*", account = ["111122223333"] }
reason = "scanner subnet"
until = 2027-01-31

[[suppress]]
when = { cluster = "sandbox" }
reason = "sandbox cluster"

[retention]
closed_days = 90

[sources]
"aws.guardduty" = 420
"""


def write(tmp_path: Path, text: str) -> str:
    """Write a configuration file and return its path."""
    path = tmp_path / "corral.toml"
    path.write_text(text)
    return str(path)


def test_full_configuration_is_parsed(tmp_path: Path) -> None:
    """Every section of a full configuration ends up in Settings."""
    path = write(tmp_path, FULL)
    settings = config.load(path, {})
    assert settings.origin == path
    assert settings.store == "postgresql://corral@db/corral"
    assert list(settings.sinks) == ["slack:soc", "splunk_hec:main", "file:archive"]
    assert settings.sinks["slack:soc"]["channel"] == "C0123456"
    router = settings.router
    assert dict(router.families) == {"slack:soc": "chat", "splunk_hec:main": "siem", "file:archive": "file"}
    urgent, unnamed = router.routes
    assert (urgent.name, urgent.to, urgent.on, urgent.samples) == (
        "urgent",
        ("slack:soc",),
        frozenset({"new", "escalated", "reopened"}),
        True,
    )
    assert dict(urgent.when.terms) == {"severity_at_least": ("high",), "container_service": ("EKS", "AKS", "GKE")}
    assert (unnamed.name, unnamed.to, unnamed.on, unnamed.samples) == (
        "routes[1]",
        ("splunk_hec:main", "file:archive"),
        None,
        False,
    )
    assert unnamed.when.terms == ()
    scanner, sandbox = router.suppressions
    until = dt.datetime(2027, 1, 31, tzinfo=dt.UTC)
    assert (scanner.name, scanner.reason, scanner.until) == ("scanner", "scanner subnet", int(until.timestamp() * 1000))
    assert (sandbox.name, sandbox.until) == ("suppress[1]", None)
    assert settings.closed_retention_days == 90
    assert settings.source_windows == {"aws.guardduty": 420}


def test_no_configuration_gives_defaults() -> None:
    """Without a file the defaults apply: the default SQLite store, no sinks, routes or retention."""
    settings = config.load(None, {})
    assert (settings.store, settings.origin, dict(settings.sinks)) == (DEFAULT_URL, "defaults", {})
    assert settings.router.routes == ()
    assert settings.closed_retention_days is None


def test_config_path_from_environment(tmp_path: Path) -> None:
    """CORRAL_CONFIG names the file when no path is given."""
    path = write(tmp_path, 'store = "sqlite:///from-file.db"')
    assert config.load(None, {"CORRAL_CONFIG": path}).store == "sqlite:///from-file.db"


@pytest.mark.parametrize(
    ("flag", "env", "file", "expected"),
    [
        ("sqlite:///flag.db", "sqlite:///env.db", "sqlite:///file.db", "flag"),
        (None, "sqlite:///env.db", "sqlite:///file.db", "env"),
        (None, None, "sqlite:///file.db", "file"),
        ("sqlite:///flag.db", None, "sqlite:///file.db", "flag"),
        (None, None, None, "default"),
    ],
)
def test_store_precedence(tmp_path: Path, flag: str | None, env: str | None, file: str | None, expected: str) -> None:
    """The store URL is the flag's, else CORRAL_STORE, else the file's, else the default."""
    path = write(tmp_path, f'store = "{file}"' if file else "")
    environ = {"CORRAL_STORE": env} if env else {}
    chosen = {"flag": flag, "env": env, "file": file, "default": DEFAULT_URL}[expected]
    assert config.load(path, environ, store=flag).store == chosen


ROUTE = '[[routes]]\nname = "r"\nto = ["slack:soc"]\n'
SINK = '[sinks."slack:soc"]\ntoken_env = "T"\nchannel = "C"\n'


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('colour = "blue"', "'colour'"),
        ('store = "corral.db"', "store"),
        ('[sinks."pager:x"]\nurl_env = "U"', "sinks.pager:x.kind"),
        ('[sinks."ops"]\nkind = "carrier-pigeon"', "sinks.ops.kind"),
        ('[sinks."slack:soc"]\ntoken = "xoxb-123"\nchannel = "C"', "sinks.slack:soc.token"),
        ('[sinks."teams:ops"]\nwebhook_url = "https://example/x"', "sinks.teams:ops.webhook_url"),
        ('[sinks."webhook:x"]\nurl = "https://x"\napi_key = "k"', "sinks.webhook:x.api_key"),
        ('[sinks."splunk_hec:x"]\nhec_password = "p"', "sinks.splunk_hec:x.hec_password"),
        ('[[routes]]\nname = "r"\nto = ["slack:nowhere"]', "routes[0] (r).to"),
        (SINK + '[[routes]]\nname = "r"\nto = []', "routes[0] (r).to"),
        (SINK + ROUTE + 'when = { colour = "red" }', "routes[0] (r).when.colour"),
        (SINK + ROUTE + 'when = { severity_at_least = "urgent" }', "routes[0] (r).when.severity_at_least"),
        (SINK + ROUTE + 'when = { severity_at_least = ["high", "low"] }', "routes[0] (r).when.severity_at_least"),
        (SINK + ROUTE + "when = { cluster = 3 }", "routes[0] (r).when.cluster"),
        (SINK + ROUTE + 'on = ["new", "exploded"]', "routes[0] (r).on"),
        (SINK + ROUTE + 'on = "new"', "routes[0] (r).on"),
        (SINK + ROUTE + 'channel = "C"', "routes[0] (r)"),
        ('[[suppress]]\nname = "s"\nwhen = { cluster = "x" }', "suppress[0] (s).reason"),
        ('[[suppress]]\nname = "s"\nwhen = { cluster = "x" }\nreason = "  "', "suppress[0] (s).reason"),
        ('[[suppress]]\nname = "s"\nreason = "why"', "suppress[0] (s).when"),
        ('[[suppress]]\nname = "s"\nreason = "why"\nwhen = {}', "suppress[0] (s).when"),
        ('[[suppress]]\nname = "s"\nreason = "why"\nwhen = { zone = "a" }', "suppress[0] (s).when.zone"),
        ('[[suppress]]\nname = "s"\nreason = "r"\nwhen = { cluster = "x" }\nuntil = "soon"', "suppress[0] (s).until"),
        ('[[suppress]]\nname = "s"\nreason = "r"\nwhen = { cluster = "x" }\nuntil = 12:00:00', "suppress[0] (s).until"),
        ('[[suppress]]\nname = "s"\nreason = "r"\nwhen = { cluster = "x" }\nowner = "me"', "suppress[0] (s)"),
        ("[retention]\nclosed_days = 0", "retention.closed_days"),
        ('[retention]\nclosed_days = "90"', "retention.closed_days"),
        ('[sources]\n"aws.guardduty" = -5', "sources"),
        ('routes = "all"', "routes"),
    ],
)
def test_validation_errors_name_the_file_and_the_key(tmp_path: Path, text: str, key: str) -> None:
    """Every invalid setting raises ConfigError naming the file and the offending key."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        config.load(path, {})
    message = str(raised.value)
    assert message.startswith(f"{path}: ")
    assert key in message


@pytest.mark.parametrize("severity", ["unknown", "other"])
def test_severity_without_order_is_rejected(tmp_path: Path, severity: str) -> None:
    """`severity_at_least` accepts only the severities its message lists, not Unknown or Other."""
    path = write(tmp_path, SINK + ROUTE + f'when = {{ severity_at_least = "{severity}" }}')
    with pytest.raises(ConfigError, match="severity_at_least"):
        config.load(path, {})


@pytest.mark.parametrize("text", ["retention = 90", "[retention]\nclosed_day = 90", "[retention]\nkeep = true"])
def test_retention_typos_are_rejected(tmp_path: Path, text: str) -> None:
    """A retention setting that is not a table, or has an unknown key, is an error, not silently ignored."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match="retention"):
        config.load(path, {})


@pytest.mark.parametrize(
    ("text", "words"), [(None, "not found"), ("store = ", "not valid TOML"), ("[sinks\n", "not valid TOML")]
)
def test_unreadable_files_name_the_file(tmp_path: Path, text: str | None, words: str) -> None:
    """A missing file or invalid TOML is a ConfigError naming the file."""
    path = write(tmp_path, text) if text is not None else str(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match=words) as raised:
        config.load(path, {})
    assert str(raised.value).startswith(f"{path}: ")


@pytest.mark.parametrize(
    ("until", "expected"),
    [
        ("2027-01-31", dt.datetime(2027, 1, 31, tzinfo=dt.UTC)),
        ("2027-01-31T12:30:00", dt.datetime(2027, 1, 31, 12, 30, tzinfo=dt.UTC)),
        ("2027-01-31T12:30:00+02:00", dt.datetime(2027, 1, 31, 10, 30, tzinfo=dt.UTC)),
    ],
)
def test_until_accepts_dates_and_datetimes(tmp_path: Path, until: str, expected: dt.datetime) -> None:
    """`until` is a TOML date (midnight UTC) or datetime (UTC unless it has an offset), as epoch ms."""
    path = write(tmp_path, f'[[suppress]]\nwhen = {{ cluster = "x" }}\nreason = "r"\nuntil = {until}')
    [rule] = config.load(path, {}).router.suppressions
    assert rule.until == int(expected.timestamp() * 1000)


SPARE = '\n[sinks."splunk_hec:spare"]\nurl = "https://splunk.example:8088"\ntoken_env = "SPLUNK_HEC_TOKEN"\n'


def test_a_sink_no_route_names_is_accepted_with_one_notice(tmp_path: Path) -> None:
    """A sink no route names would receive nothing: the configuration loads, and a notice names it."""
    assert config.load(write(tmp_path, FULL), {}).notices() == []
    settings = config.load(write(tmp_path, FULL + SPARE), {})
    assert "splunk_hec:spare" in settings.sinks
    assert settings.notices() == ['sink "splunk_hec:spare" is named by no route; it will receive nothing']
