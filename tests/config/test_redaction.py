"""Credentials in store and endpoint URLs never reach a message or a log: user info and query values.

Each store URL form is opened the way an operator would write it, made to fail (unknown scheme,
bad parameter, a server that is down), and the error text and every log record are searched
for the credential.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.errors import CorralError
from corral.redaction import redact_text, redact_url, url_secrets
from corral.stores import open_store, redact

SECRET = "Hunter2-redaction-canary"


def closed_port() -> int:
    """A loopback port where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://corral:<s>@db/corral", "postgresql://corral:***@db/corral"),
        ("postgres://corral:<s>@db:5432/corral?sslmode=require", "postgres://corral:***@db:5432/corral?sslmode=require"),
        ("postgresql://corral@db/corral?password=<s>", "postgresql://corral@db/corral?password=***"),
        ("postgresql://db/corral?PASSWORD=<s>&sslmode=require", "postgresql://db/corral?PASSWORD=***&sslmode=require"),
        ("postgresql://db/corral?sslpassword=<s>", "postgresql://db/corral?sslpassword=***"),
        ("postgresql://corral:<s>@db/corral?password=<s>", "postgresql://corral:***@db/corral?password=***"),
        ("postgresql://u:<s>%40x@db/c", "postgresql://u:***@db/c"),
        ("dynamodb://corral?region=eu-west-1&endpoint=http://AK:<s>@127.0.0.1:5000",
         "dynamodb://corral?region=eu-west-1&endpoint=http://AK:***@127.0.0.1:5000"),
        ("dynamodb://corral?region=eu-west-1&aws_secret_access_key=<s>",
         "dynamodb://corral?region=eu-west-1&aws_secret_access_key=***"),
        ("sqlite:///corral.db?key=<s>", "sqlite:///corral.db?key=***"),
        ("https://hooks.example/x?Token=<s>&api_key=<s>&Sig=<s>&X-Amz-Signature=<s>&v=1",
         "https://hooks.example/x?Token=***&api_key=***&Sig=***&X-Amz-Signature=***&v=1"),
        ("https://user:<s>@[::1/broken?secret=<s>", "https://***@[::1/broken?secret=***"),
        ("sqlite:///corral.db", "sqlite:///corral.db"),
    ],
)  # fmt: skip
def test_every_url_form_loses_its_credentials(url: str, expected: str) -> None:
    """User-info passwords and password/token/secret/key/sig query values (any case) become ***."""
    url = url.replace("<s>", SECRET)
    assert redact_url(url) == expected
    assert redact(url) == expected
    assert SECRET not in redact_url(url)


def test_secrets_are_listed_for_scrubbing_driver_messages() -> None:
    """The credentials of a URL, raw and decoded, can be scrubbed from text that quotes them alone."""
    url = "postgresql://u:pa%40ss@db/c?password=other"
    assert set(url_secrets(url)) == {"pa%40ss", "pa@ss", "other"}
    assert redact_text("auth failed for pa@ss and other", url_secrets(url)) == "auth failed for *** and ***"
    assert redact_text(f"see {url} now") == "see postgresql://u:***@db/c?password=*** now"


STORE_URLS = [
    f"postgresql://corral:{SECRET}@127.0.0.1:{{port}}/corral?connect_timeout=2",
    f"postgresql://corral@127.0.0.1:{{port}}/corral?password={SECRET}&connect_timeout=2",
    f"postgres://corral@127.0.0.1:{{port}}/corral?connect_timeout=2&sslpassword={SECRET}",
]


@pytest.mark.parametrize("template", STORE_URLS)
def test_postgresql_outage_message_and_logs_hold_no_password(template: str, caplog: pytest.LogCaptureFixture) -> None:
    """A PostgreSQL store that is down says so in one line, without the password written in its URL."""
    caplog.set_level(logging.DEBUG)
    url = template.format(port=closed_port())
    store = open_store(url)
    with pytest.raises(CorralError) as caught:
        store.migrate()
    store.close()
    message = str(caught.value)
    assert "unavailable" in message and "\n" not in message
    assert SECRET not in message
    assert SECRET not in caplog.text


@pytest.mark.parametrize(
    "url",
    [
        f"mysql://corral:{SECRET}@db/corral",
        f"mysql://db/corral?password={SECRET}",
        f"dynamodb://x?region=eu-west-1&aws_secret_access_key={SECRET}",
        f"dynamodb://corral?region=eu-west-1&endpoint=ftp://AK:{SECRET}@h",
        f"dynamodb://corral?endpoint=http://AK:{SECRET}@127.0.0.1:1",
        f"sqlite://host/corral.db?key={SECRET}",
    ],
)
def test_store_configuration_errors_hold_no_secret(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Unknown schemes, bad parameters and missing regions are reported with the URL redacted."""
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    with pytest.raises(CorralError) as caught:
        open_store(url)
    assert "store URL" in str(caught.value)
    assert SECRET not in str(caught.value)


def test_cli_error_line_holds_no_password() -> None:
    """`corral` with a store URL whose password sits in the query prints one line without it."""
    url = f"postgresql://corral@127.0.0.1:{closed_port()}/corral?connect_timeout=2&password={SECRET}"
    done = subprocess.run(
        [sys.executable, "-m", "corral.cli", "redrive", "--store", url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert SECRET not in done.stdout + done.stderr
    assert "password=***" in done.stderr


def test_every_store_shows_its_url_without_credentials(tmp_path: Path) -> None:
    """`store.url` (shown by the dashboard, the CLI and errors) never holds the credential, for each backend."""
    urls = [
        f"sqlite:///{tmp_path / 'corral.db'}?key={SECRET}",
        f"postgresql://corral@127.0.0.1:{closed_port()}/corral?password={SECRET}",
        f"dynamodb://corral?region=eu-west-1&endpoint=http://AK:{SECRET}@127.0.0.1:{closed_port()}",
    ]
    for url in urls:
        store = open_store(url)
        try:
            assert SECRET not in store.url, store.url
            assert "***" in store.url
        finally:
            store.close()


SECRET_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=0, max_size=24)
PARAMETERS = st.sampled_from(
    ["password", "PASSWORD", "sslpassword", "token", "api_key", "Secret", "sig", "X-Amz-Signature"]
)
SCHEMES = st.sampled_from(["postgresql", "postgres", "dynamodb", "https", "sqlite"])


@settings(max_examples=300, deadline=None)
@given(scheme=SCHEMES, text=SECRET_TEXT, parameter=PARAMETERS, where=st.sampled_from(["userinfo", "query", "both"]))
def test_no_written_credential_survives_redaction(scheme: str, text: str, parameter: str, where: str) -> None:
    """Any credential, percent-encoded as a URL requires, is gone from the redacted URL in both its forms."""
    secret = "Zq9" + text  # a prefix no other part of the URL contains
    encoded = quote(secret, safe="")
    userinfo = f"corral:{encoded}@" if where in ("userinfo", "both") else ""
    query = f"?sslmode=require&{parameter}={encoded}&region=eu-west-1" if where in ("query", "both") else ""
    url = f"{scheme}://{userinfo}db.internal:5432/corral{query}"
    redacted = redact_url(url)
    assert encoded not in redacted and secret not in redacted, redacted
    assert "db.internal:5432/corral" in redacted


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=200))
def test_redaction_never_raises(text: str) -> None:
    """Whatever a message holds (broken URLs, stray brackets), redacting it gives text back."""
    assert isinstance(redact_text(f"see {text} and https://u:p@[{text}/x?token={text}"), str)
    assert isinstance(redact_url(text), str)


@pytest.mark.parametrize("password", ["sec#ret", "sec?ret", "sec/ret", "p@ss#w/rd?x"])
def test_a_password_holding_url_delimiters_is_hidden_whole(password: str) -> None:
    """libpq reads everything up to the last @ as the password; urlsplit stops at # ? /: none of it may show."""
    url = f"postgresql://user:{password}@127.0.0.1:1/db"
    assert redact_url(url) == "postgresql://user:***@127.0.0.1:1/db"
    assert password in url_secrets(url)
    for piece in password.replace("#", " ").replace("?", " ").replace("/", " ").replace("@", " ").split():
        assert piece not in redact_url(url).removeprefix("postgresql://user:")
