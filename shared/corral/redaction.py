"""Credentials out of URLs before a URL reaches a message or a log.

A store or endpoint URL can carry a credential in two places: its user info (`user:pw@host`)
and its query (`?password=…`, `?sslpassword=…`, `?api_key=…`, `?sig=…`, `?X-Amz-Signature=…`).
Both are replaced by `***`; the rest of the URL stays as written, so the operator still sees
which host, database or table is meant. A query value that is itself a URL (a DynamoDB
`endpoint=`) is redacted the same way.
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import unquote, urlsplit

MASK: Final = "***"
# Patterns as text: `re` compiles each on first use and keeps it, so a cold start whose URLs
# carry no query never pays for compiling them.
SECRET_PARAMETER: Final = r"(?i)password|token|secret|key|sig"  # noqa: S105 - a pattern, not a secret
"""Query parameter names whose values are credentials (matched anywhere in the name)."""
_URL: Final = r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+"
_USERINFO: Final = r"(?<=://)[^/?#@\s]*@"
_QUERY_SECRET: Final = r"(?i)([?&][^=&#\s]*(?:password|token|secret|key|sig)[^=&#\s]*=)[^&#\s]*"  # noqa: S105


def redact_url(url: str) -> str:
    """Return `url` with the password of its user info and its secret query values replaced by `***`.

    Example:
        >>> redact_url("postgresql://corral:pw@db/corral?sslmode=require&password=pw2")
        'postgresql://corral:***@db/corral?sslmode=require&password=***'
    """
    written = _written_password(url)
    if written is not None:
        head, _, rest = url.partition("://")
        user = rest.partition(":")[0]
        url = f"{head}://{user}:{MASK}@{rest[len(user) + 1 + len(written) + 1 :]}"
    try:
        parts = urlsplit(url)
        password = parts.password if written is None else None
    except ValueError:
        # Not parseable as a URL (e.g. a broken IPv6 host): hide the whole user info and secret values.
        return re.sub(_QUERY_SECRET, rf"\g<1>{MASK}", re.sub(_USERINFO, f"{MASK}@", url))
    netloc = parts.netloc
    if password is not None:
        userinfo, _, host = netloc.rpartition("@")
        user = userinfo.partition(":")[0]
        netloc = f"{user}:{MASK}@{host}"
    query = "&".join(_redact_parameter(pair) for pair in parts.query.split("&")) if parts.query else ""
    # Spliced into the text as written: urlunsplit would also normalize it (sqlite:/// → sqlite:/).
    head, mark, rest = url.partition("?")
    if netloc != parts.netloc:
        head = head.replace(f"//{parts.netloc}", f"//{netloc}", 1)
    if query != parts.query:
        rest = query + rest[len(parts.query) :]
    return head + mark + rest


# The password of a URL's user info as a database driver reads it: everything after the user's
# colon up to the last `@`. libpq takes `sec#ret` or `sec/ret` as a password, where urlsplit
# stops at `#`, `?` or `/` and would leave the rest of it in plain sight.
_WRITTEN_PASSWORD: Final = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^:/@?#]*:(?P<password>.*)@[^@]*$", re.DOTALL)


def _written_password(url: str) -> str | None:
    found = _WRITTEN_PASSWORD.match(url)
    return found["password"] if found else None


def _redact_parameter(pair: str) -> str:
    name, equals, value = pair.partition("=")
    if not equals:
        return pair
    if re.search(SECRET_PARAMETER, unquote(name)):
        return f"{name}={MASK}"
    decoded = unquote(value)
    if "://" in decoded:
        redacted = redact_url(decoded)
        return pair if redacted == decoded else f"{name}={redacted}"
    return pair


def url_secrets(url: str) -> list[str]:
    """The credentials `redact_url` hides in `url` (raw and percent-decoded), longest first.

    For scrubbing text that quotes a credential outside the URL, such as a driver's error message.

    Example:
        >>> url_secrets("postgresql://u:pa%40ss@db/x?password=other")
        ['pa%40ss', 'other', 'pa@ss']
    """
    found: set[str] = set()
    written = _written_password(url)
    if written is not None:
        found.add(written)
    try:
        parts = urlsplit(url)
        userinfo = parts.netloc.rpartition("@")[0]
    except ValueError:
        return sorted(found | {unquote(s) for s in found}, key=lambda s: (-len(s), s))
    if ":" in userinfo:
        found.add(userinfo.partition(":")[2])
    for pair in parts.query.split("&"):
        name, equals, value = pair.partition("=")
        if equals and re.search(SECRET_PARAMETER, unquote(name)):
            found.add(value)
        elif "://" in unquote(value):
            found.update(url_secrets(unquote(value)))
    found |= {unquote(s) for s in found}
    return sorted((s for s in found if s), key=lambda s: (-len(s), s))


def redact_text(text: str, secrets: list[str] | tuple[str, ...] = ()) -> str:
    """Return `text` with every URL in it redacted, and each of `secrets` replaced by `***`.

    Example:
        >>> redact_text("cannot reach https://u:pw@h/x?token=t1 (pw)", ["pw"])
        'cannot reach https://u:***@h/x?token=*** (***)'
    """
    redacted = re.sub(_URL, lambda m: redact_url(m.group(0)), text)
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            redacted = redacted.replace(secret, MASK)
    return redacted
