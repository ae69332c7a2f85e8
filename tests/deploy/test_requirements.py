"""Each cloud's requirements.txt declares every package Corral can load there, at the tested versions."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENT = re.compile(r"^(?P<name>[A-Za-z0-9_.-]+)(?:\[(?P<extras>[^\]]+)\])?==(?P<version>\S+)$")

# What a store or sink URL can make Corral import, by the distribution that provides it.
EVERY_STORE_AND_SINK = {"orjson", "psycopg", "urllib3", "azure-monitor-ingestion", "azure-identity"}
EVERY_STORE_AND_SINK |= {"google-cloud-pubsub", "boto3"}
# What each platform provides itself, so its requirements must not carry it.
PROVIDED = {"aws": {"boto3"}, "azure": set(), "gcp": set()}
ENTRY = {"aws": set(), "azure": {"azure-functions"}, "gcp": {"functions-framework", "google-auth"}}
# How a remote build (Oryx, Cloud Build) is held to constraints.txt, which `make package` ships
# beside requirements.txt; the Lambda build passes -c itself.
CONSTRAINED = "-c constraints.txt"


def canonical(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(cloud: str) -> dict[str, tuple[str, str]]:
    """Name -> (extras, version) of functions/<cloud>/requirements.txt; every line must pin one version."""
    found: dict[str, tuple[str, str]] = {}
    for raw in (ROOT / "functions" / cloud / "requirements.txt").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or line == CONSTRAINED:
            continue
        match = REQUIREMENT.match(line)
        assert match, f"functions/{cloud}/requirements.txt: {line!r} is not pinned as name==version"
        found[canonical(match["name"])] = (match["extras"] or "", match["version"])
    return found


def constraints() -> dict[str, str]:
    """Name -> version of constraints.txt."""
    pins: dict[str, str] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            pins[canonical(name)] = version.strip()
    return pins


@pytest.mark.parametrize("cloud", ["aws", "azure", "gcp"])
def test_requirements_declare_every_loadable_package(cloud: str) -> None:
    """Every store's and sink's package is declared, unless the platform provides it, plus the entry point's."""
    declared = set(requirements(cloud))
    assert declared == (EVERY_STORE_AND_SINK - PROVIDED[cloud]) | ENTRY[cloud]
    assert requirements(cloud)["psycopg"][0] == "binary", "no libpq on the platform: psycopg needs its binary extra"


@pytest.mark.parametrize("cloud", ["aws", "azure", "gcp"])
def test_requirements_pin_the_tested_versions(cloud: str) -> None:
    """Each pin is the version constraints.txt pins, which the test suite runs with."""
    pins = constraints()
    for name, (_, version) in requirements(cloud).items():
        assert pins.get(name) == version, (
            f"functions/{cloud}/requirements.txt pins {name}=={version}, constraints.txt {pins.get(name)}"
        )


@pytest.mark.parametrize("cloud", ["azure", "gcp"])
def test_remote_builds_resolve_transitive_dependencies_to_the_tested_versions(cloud: str) -> None:
    """The requirements the platform installs name constraints.txt, so nothing is resolved fresh at deploy."""
    lines = [line.strip() for line in (ROOT / "functions" / cloud / "requirements.txt").read_text().splitlines()]
    assert CONSTRAINED in lines
