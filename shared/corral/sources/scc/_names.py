"""The names SCC findings carry: whether a `parent` names a source, and a finding's console link."""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import quote

_SOURCE_NAME: Final = re.compile(r"^(?:organizations|folders|projects)/[^/]+/sources/[^/]+(?:/locations/[^/]+)?$")
_ORG_ROOT: Final = "organizations/"
_CONSOLE: Final = "https://console.cloud.google.com/security/command-center/findingsv2;name="
# Resource names are ASCII letters, digits, `-_.~` and `/`: only the slashes need quoting.
_PLAIN_PATH: Final = re.compile(r"[A-Za-z0-9_.~/-]*")


# Whether each `parent` met is a source name: a deployment's findings come from a handful of
# sources, so each is matched once rather than once per finding. Bounded.
_SOURCE_NAMES: Final[dict[str, bool]] = {}
_MAX_SOURCE_NAMES: Final = 1024


def is_source_name(parent: str) -> bool:
    """True when `parent` names an SCC source (`organizations/N/sources/S[/locations/L]`)."""
    found = _SOURCE_NAMES.get(parent)
    if found is None:
        found = _SOURCE_NAME.match(parent) is not None
        if len(_SOURCE_NAMES) < _MAX_SOURCE_NAMES:
            _SOURCE_NAMES[parent] = found
    return found


def _quote(value: str) -> str:
    """Percent-encode every character but the unreserved ones, as `urllib.parse.quote(value, safe="")`."""
    if value.isalnum() and value.isascii():
        return value  # ids and numbers: nothing to encode, no pattern to run
    return value.replace("/", "%2F") if _PLAIN_PATH.fullmatch(value) else quote(value, safe="")


# Per source (the finding name up to its last slash, `<source>/findings`): the console link up to
# the finding's own id, and the `?organizationId=` query of an organization-rooted name (else
# None). A deployment's findings come from a handful of sources, so the long shared part of the
# name is quoted once per source rather than once per finding. Bounded, like every such memo.
_CONSOLE_HEADS: Final[dict[str, tuple[str, str | None]]] = {}
_MAX_CONSOLE_HEADS: Final = 1024


def _console_head(head: str) -> tuple[str, str | None]:
    url = _CONSOLE + _quote(head)
    query = None
    # What `^organizations/([^/]+)/` matches, without a pattern; the organization lies in `head`,
    # which runs to the name's last slash.
    if head.startswith(_ORG_ROOT) and (end := head.find("/", len(_ORG_ROOT))) > len(_ORG_ROOT):
        query = f"?organizationId={_quote(head[len(_ORG_ROOT) : end])}"
    if len(_CONSOLE_HEADS) < _MAX_CONSOLE_HEADS:
        _CONSOLE_HEADS[head] = (url, query)
    return url, query


def console_url(name: str, project_id: str | None) -> str:
    """The finding's page in the console; `project_id` is the GCP project's (None in another cloud)."""
    # Quoting works character by character, so the name quotes as its head and its last segment.
    cut = name.rfind("/") + 1
    head = name[:cut]
    url, query = _CONSOLE_HEADS.get(head) or _console_head(head)
    url += _quote(name[cut:])
    if query is not None:
        return url + query
    return f"{url}?project={_quote(project_id)}" if project_id else url
