"""The read side of the CLI as a person uses it: real processes over a real SQLite file, exit codes included."""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from corral.cli.text import plain
from corral.pipeline import now_ms
from corral.sinks.chat import console_url
from corral.stores import open_store
from corral.stores.base import SourceSeen
from tests.stores.factory import make_finding
from tests.support.permissions import loose_umask, mode  # noqa: F401  (loose_umask: the fixture)

EVENTS = Path(__file__).resolve().parents[1] / "events"
ROOT = Path(__file__).resolve().parents[2]
CORRAL = [sys.executable, "-m", "corral.cli.__main__"]
HEX = set("0123456789abcdef")


def corral(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `corral` with no configuration beyond the arguments; no run may print a traceback."""
    proc = subprocess.run(
        [*CORRAL, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd or ROOT,
        env={**os.environ, "CORRAL_CONFIG": "", "CORRAL_STORE": "", "COLUMNS": "200", **(env or {})},
    )
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    return proc


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A SQLite store holding every fixture finding, ingested by the CLI."""
    path = tmp_path_factory.mktemp("cli") / "corral.db"
    proc = corral("ingest", "--json", "--store", f"sqlite:///{path}", str(EVENTS))
    assert json.loads(proc.stdout)["new"] >= 30
    yield f"sqlite:///{path}"


def listing(store: str, *args: str) -> list[dict[str, str]]:
    """`findings list --csv` as rows."""
    proc = corral("findings", "list", "--store", store, "--csv", "--limit", "500", *args)
    assert proc.returncode == 0, proc.stderr
    return list(csv.DictReader(io.StringIO(proc.stdout)))


def test_list_has_ids_source_time_and_says_how_many(store: str) -> None:
    """The table has a short id column and the event time, and ends with "showing X of N" and the next cursor."""
    proc = corral("findings", "list", "--store", store, "--limit", "5")
    assert proc.returncode == 0
    total = len(listing(store))
    assert f"showing 5 of {total}; next page: --cursor " in proc.stdout
    assert "id" in proc.stdout and "event time" in proc.stdout
    rows = listing(store)
    assert all(len(r["id"]) == 12 and set(r["id"]) <= HEX for r in rows)
    assert all(r["event_time"].endswith("Z") for r in rows if r["event_time"])


def test_cursor_paging_walks_every_finding_once(store: str) -> None:
    """Following each printed cursor visits every finding exactly once."""
    seen: list[str] = []
    cursor: list[str] = []
    for _ in range(50):
        proc = corral("findings", "list", "--store", store, "--csv", "--limit", "7", *cursor)
        assert proc.returncode == 0
        seen += [r["id"] for r in csv.DictReader(io.StringIO(proc.stdout))]
        if "next page: --cursor " not in proc.stderr:
            break
        cursor = ["--cursor", proc.stderr.split("--cursor ")[1].split()[0]]
    assert len(seen) == len(set(seen)) == len(listing(store))
    bad = corral("findings", "list", "--store", store, "--cursor", "not-a-cursor")
    assert bad.returncode == 1 and bad.stderr.startswith("corral: error: --cursor:")


def test_csv_is_machine_readable_and_defused(store: str) -> None:
    """--csv prints a header and one row per finding; the count goes to stderr; formulas stay text."""
    proc = corral("findings", "list", "--store", store, "--csv", "--limit", "3")
    rows = list(csv.reader(io.StringIO(proc.stdout)))
    assert rows[0][:3] == ["id", "severity", "status"] and len(rows) == 4
    assert proc.stderr.startswith("showing 3 of ")
    from corral.cli.findings import _cell

    assert _cell("=HYPERLINK(1)") == "'=HYPERLINK(1)" and _cell("-1+2") == "'-1+2" and _cell("shop") == "shop"
    both = corral("findings", "list", "--store", store, "--csv", "--json")
    assert both.returncode == 1 and "choose one" in both.stderr


def test_filters_match_any_case(store: str) -> None:
    """--cloud aws, --container-service eks, --source GuardDuty's id in capitals: the same as the canonical spelling."""
    aws = listing(store, "--cloud", "aws")
    assert aws and aws == listing(store, "--cloud", "AWS") and {r["cloud"] for r in aws} == {"AWS"}
    eks = listing(store, "--container-service", "eks")
    assert eks and {r["service"] for r in eks} == {"EKS"}
    guardduty = listing(store, "--source", "AWS.GuardDuty")
    assert guardduty and {r["source"] for r in guardduty} == {"aws.guardduty"}
    assert listing(store, "--severity-at-least", "HIGH") == listing(store, "--severity-at-least", "high")


def test_search_status_and_since(store: str) -> None:
    """--search is a case-insensitive substring of title or resource; --status and --since narrow the list."""
    found = listing(store, "--search", "REVERSE SHELL")
    assert found and all("reverse shell" in r["title"].lower() for r in found)
    assert len(listing(store, "--search", "reverse shell", "--cloud", "gcp")) < len(found)
    new = listing(store, "--status", "new")
    assert new and {r["status"] for r in new} == {"New"}
    assert len(listing(store, "--status", "open")) >= len(new)
    assert len(listing(store, "--since", "3650d")) == len(listing(store))
    assert listing(store, "--since", "2999-01-01") == []


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--cloud", "amazon"), "--cloud: unknown value 'amazon'; use one of AWS, Azure, GCP"),
        (("--container-service", "kubernetes"), "use one of EKS, ECS on EC2"),
        (("--severity-at-least", "urgent"), "use one of informational, low, medium, high, critical, fatal"),
        (("--status", "closedish"), "use one of open, new, in-progress"),
        (("--source", "nowhere.scanner"), "use one of aws.guardduty"),
        (("--since", "yesterday"), "neither a period (30m, 24h, 7d, 2w) nor a date"),
    ],
)
def test_invalid_values_are_rejected_listing_the_allowed_ones(store: str, args: tuple[str, ...], says: str) -> None:
    """An unknown filter value exits 1 with one line naming the allowed values, never an empty table."""
    proc = corral("findings", "list", "--store", store, *args)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.startswith("corral: error: ") and says in proc.stderr and proc.stderr.count("\n") == 1


@pytest.mark.parametrize("limit", ["-1", "0", "501", "many"])
def test_out_of_range_limit_is_a_usage_error(store: str, limit: str) -> None:
    """--limit outside 1 to 500 is refused with the range (exit 2), not an empty table."""
    proc = corral("findings", "list", "--store", store, "--limit", limit)
    assert proc.returncode == 2 and "--limit" in proc.stderr and proc.stdout == ""


def test_show_by_unique_prefix_with_every_field(store: str) -> None:
    """`findings show` takes the listed id (or a prefix) and prints console link, region, type, times, description."""
    rows = listing(store, "--source", "aws.guardduty", "--search", "compromise")
    assert len(rows) == 1
    short = rows[0]["id"]
    full = json.loads(corral("findings", "show", short, "--json", "--store", store).stdout)
    doc = full["finding"]
    shown = corral("findings", "show", short[:8], "--store", store)
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert full["id"].startswith(short)
    for expected in (
        console_url(doc),
        doc["cloud"]["region"],
        doc["finding_info"]["types"][0],
        "event time",
        "(source clock)",
        "first seen",
        doc["finding_info"]["desc"][:40],
        full["id"],
    ):
        # Rich folds long values over lines: compare without whitespace.
        assert expected is not None and "".join(expected.split()) in "".join(out.split()), expected
    missing = corral("findings", "show", "ffffffffffff0000", "--store", store)
    assert missing.returncode == 1 and "no stored finding" in missing.stderr
    empty = corral("findings", "show", " ", "--store", store)
    assert empty.returncode == 1 and "the finding id is empty" in empty.stderr


@pytest.mark.parametrize(
    "command",
    [
        ("findings", "list"),
        ("findings", "show", "abc123"),
        ("coverage",),
        ("sources",),
        ("report", "--out", "r.html"),
        ("serve", "--port", "0"),
        ("deadletter", "list"),
    ],
)
def test_read_commands_never_create_a_store(tmp_path: Path, command: tuple[str, ...]) -> None:
    """A missing SQLite file is an error with a hint at the demo's store, and no empty database appears."""
    typo = tmp_path / "typo" / "corral.db"
    proc = corral(*command, "--store", f"sqlite:///{typo}", cwd=tmp_path)
    assert proc.returncode == 1
    assert "no such SQLite file" in proc.stderr and "demo-out/corral.db" in proc.stderr
    assert not typo.exists() and not (tmp_path / "typo").exists()
    default = corral(*command, cwd=tmp_path)
    assert default.returncode == 1 and not (tmp_path / "corral.db").exists()


def test_local_corral_toml_is_read(store: str, tmp_path: Path) -> None:
    """./corral.toml names the store when no --config or CORRAL_CONFIG does; --help says so."""
    (tmp_path / "corral.toml").write_text(f'store = "{store}"\n')
    (tmp_path / "corral.toml").chmod(0o644)
    proc = corral("findings", "list", "--csv", cwd=tmp_path)
    assert proc.returncode == 0 and len(proc.stdout.splitlines()) > 5
    assert proc.stderr.splitlines()[0] == "corral: using ./corral.toml"
    assert "./corral.toml" in " ".join(corral("--help").stdout.split())
    assert "./corral.toml" in " ".join(corral("findings", "list", "--help").stdout.split())


@pytest.mark.parametrize("mode", [0o664, 0o646])
def test_a_local_corral_toml_others_can_write_is_not_read(store: str, tmp_path: Path, mode: int) -> None:
    """A ./corral.toml that another user could have written (a shared folder) could send any secret
    of the environment anywhere: it is refused with one line, and read only when named."""
    local = tmp_path / "corral.toml"
    local.write_text(f'store = "{store}"\n')
    local.chmod(mode)
    proc = corral("findings", "list", "--csv", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr == (
        f"corral: error: ./corral.toml: not read: others can write to it (mode {mode:o};"
        " chmod go-w corral.toml, or name it with --config)\n"
    )
    named = corral("findings", "list", "--csv", "--config", str(local), cwd=tmp_path)
    assert named.returncode == 0 and len(named.stdout.splitlines()) > 5


def test_version() -> None:
    """--version prints the version and exits 0."""
    proc = corral("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("corral ") and proc.stdout.strip() != "corral"


def test_no_traceback_for_a_missing_folder_or_a_busy_port(store: str, tmp_path: Path) -> None:
    """report --out into a missing folder and serve on a port in use are one line each, exit 1."""
    proc = corral("report", "--store", store, "--out", "/missing-dir/r.html")
    assert proc.returncode == 1 and proc.stderr.startswith("corral: error: --out /missing-dir/r.html: cannot write")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = corral("serve", "--store", store, "--port", str(port))
    assert proc.returncode == 1 and proc.stderr.startswith(f"corral: error: serve: cannot listen on 127.0.0.1:{port}")
    assert proc.stderr.count("\n") == 1


@pytest.mark.usefixtures("loose_umask")
def test_report_file_is_owner_only(store: str, tmp_path: Path) -> None:
    """Under umask 022 `report` creates its HTML 0600; a file already there is rewritten and keeps its mode."""
    new = tmp_path / "report.html"
    proc = corral("report", "--store", store, "--out", str(new))
    assert proc.returncode == 0, proc.stderr
    assert mode(new) == 0o600 and "<html" in new.read_text()
    existing = tmp_path / "shared.html"
    existing.write_text("an older and much longer page " * 10_000)
    existing.chmod(0o644)
    proc = corral("report", "--store", store, "--out", str(existing))
    assert proc.returncode == 0, proc.stderr
    assert mode(existing) == 0o644
    text = existing.read_text()
    assert "an older" not in text and text.rstrip().endswith("</html>")  # truncated and rewritten, as before


def test_store_expire_help_keeps_its_brackets() -> None:
    """Rich markup does not eat `[retention]` in the help."""
    assert "[retention] closed_days" in corral("store", "expire", "--help").stdout


def test_sources_check_exits_3_when_a_source_is_silent(tmp_path: Path) -> None:
    """A source whose last delivery is ten days old is silent: --check says so in its exit status (3)."""
    url = f"sqlite:///{tmp_path / 'quiet.db'}"
    db = open_store(url)
    db.touch_sources([SourceSeen("aws.guardduty", "111122223333", at=now_ms() - 10 * 86_400_000)])
    db.close()
    proc = corral("sources", "--check", "--json", "--store", url)
    report = json.loads(proc.stdout)
    assert [s["state"] for s in report["sources"]] == ["silent"]
    assert proc.returncode == 3 and "1 source(s) silent" in proc.stderr
    assert corral("sources", "--store", url).returncode == 0  # showing is not checking


def test_sources_check_exits_0_when_every_source_delivers(tmp_path: Path) -> None:
    """With a fresh delivery of every source, --check exits 0."""
    path = tmp_path / "fresh.db"
    guardduty = json.loads(
        (EVENTS / "aws" / "guardduty" / "eks-runtime-newbinaryexecuted-eventbridge.json").read_text()
    )
    guardduty["time"] = datetime.now(UTC).isoformat(timespec="seconds")  # published now, as EventBridge would
    (tmp_path / "one.json").write_text(json.dumps(guardduty))
    assert corral("ingest", "--store", f"sqlite:///{path}", str(tmp_path / "one.json")).returncode == 0
    proc = corral("sources", "--check", "--store", f"sqlite:///{path}")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_sources_check_is_not_fooled_by_an_old_event_ingested_now(tmp_path: Path) -> None:
    """A year-old event ingested today (a backfill, an archive replay) shows nothing of today: --check exits 3."""
    path = tmp_path / "old.db"
    event = EVENTS / "aws" / "guardduty" / "eks-runtime-newbinaryexecuted-eventbridge.json"
    assert corral("ingest", "--store", f"sqlite:///{path}", str(event)).returncode == 0
    proc = corral("sources", "--check", "--store", f"sqlite:///{path}")
    assert proc.returncode == 3 and "1 source(s) silent" in proc.stderr


def test_ingest_summary_per_sink(tmp_path: Path) -> None:
    """The ingest summary says what each sink got: sent, failed, pending, and the first failure's reason."""
    config = tmp_path / "corral.toml"
    config.write_text(
        f'store = "sqlite:///{tmp_path / "c.db"}"\n'
        f'[sinks."file:all"]\nkind = "file"\npath = "{tmp_path / "out.jsonl"}"\n'
        '[sinks."webhook:down"]\nkind = "webhook"\nurl = "https://127.0.0.1:9/hook"\nsecret_env = "HOOK_SECRET"\n'
        '[[routes]]\nname = "all"\nto = ["file:all", "webhook:down"]\n'
    )
    env = {"CORRAL_CONFIG": str(config), "HOOK_SECRET": "0123456789abcdef0123"}
    proc = corral("ingest", "--json", str(EVENTS / "aws" / "guardduty"), env=env)
    sinks = json.loads(proc.stdout)["sinks"]
    assert sinks["file:all"]["sent"] > 0 and sinks["file:all"]["failed"] == sinks["file:all"]["pending"] == 0
    assert sinks["file:all"]["first_failure"] is None
    down = sinks["webhook:down"]
    assert down["sent"] == 0 and down["pending"] + down["failed"] == sinks["file:all"]["sent"]
    assert (down["first_failure"] and "webhook:down" in down["first_failure"]) or down["first_failure"]
    table = corral("ingest", str(EVENTS / "aws" / "guardduty"), env={"CORRAL_CONFIG": str(config)})
    assert "deliveries" not in table.stdout  # nothing new the second time: no delivery to report


def test_terminal_control_text_in_findings_is_never_printed_raw(tmp_path: Path) -> None:
    """A title that sets the terminal title, clears the screen and forges a line shows as harmless text."""
    hostile = "Reverse shell\x1b]0;PWNED\x07\x1b[2J\nforged line \u202eevil"
    path = tmp_path / "hostile.json"
    path.write_text(json.dumps(make_finding("hostile", title=hostile, cluster="prod\x1b[31m")))
    url = f"sqlite:///{tmp_path / 'h.db'}"
    assert corral("ingest", "--store", url, str(path)).returncode == 0
    unknown = tmp_path / "keys.json"
    unknown.write_text(json.dumps({"\x1b]0;KEYPWN\x07k": 1}))
    for proc in (
        corral("findings", "list", "--store", url),
        corral("findings", "show", "hostile", "--store", url),
        corral("ingest", "--store", url, str(unknown)),
        corral("normalize", str(unknown)),
    ):
        out = proc.stdout + proc.stderr
        assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    shown = corral("findings", "show", "hostile", "--store", url).stdout
    assert "Reverse shell\ufffd]0;PWNED" in shown
    assert not any(line.startswith("forged line") for line in shown.splitlines())


def stored(tmp_path: Path, finding: dict[str, object]) -> str:
    """Ingest one finding with the real CLI into a new SQLite store; return the store's URL."""
    path = tmp_path / "finding.json"
    path.write_text(json.dumps(finding))
    url = f"sqlite:///{tmp_path / 'one.db'}"
    assert corral("ingest", "--store", url, str(path)).returncode == 0
    return url


def test_csv_and_json_print_no_terminal_control_text(tmp_path: Path) -> None:
    """--csv replaces control and bidi characters as the table does, formula guard kept; --json escapes them."""
    hostile = '=HYPERLINK("http://evil","x")\x1b]0;PWNED\x07\x1b[2J\x1b[31mFAKE\x1b[0m\rOVERWRITE \u202eRTL\x7f\x9b'
    url = stored(tmp_path, make_finding("hostile", title=hostile))
    raw = ("\x1b", "\x07", "\r", "\u202e", "\x7f", "\x9b")
    listed = corral("findings", "list", "--store", url, "--csv")
    assert not any(c in listed.stdout for c in raw)
    (row,) = csv.DictReader(io.StringIO(listed.stdout))
    assert row["title"] == "'" + plain(hostile)
    assert row["title"].startswith("'=HYPERLINK(") and "\ufffd]0;PWNED\ufffd\ufffd[2J" in row["title"]
    for proc in (
        corral("findings", "list", "--store", url, "--json"),
        corral("findings", "show", "hostile", "--store", url, "--json"),
    ):
        assert not any(c in proc.stdout for c in raw)
        # Escaped, not replaced: the data read back is the finding's own title.
        assert json.loads(proc.stdout)["finding"]["finding_info"]["title"] == hostile


def test_emoji_codes_in_findings_are_shown_as_written(tmp_path: Path) -> None:
    """rich would turn :white_check_mark: into an emoji: a title must not make a finding look resolved."""
    title = ":white_check_mark: resolved :thumbs_up: benign"
    url = stored(tmp_path, make_finding("emoji", title=title))
    for proc in (corral("findings", "list", "--store", url), corral("findings", "show", "emoji", "--store", url)):
        assert title in proc.stdout and "\u2705" not in proc.stdout and "\U0001f44d" not in proc.stdout


@pytest.mark.parametrize(
    "args", [("images", "--limit", "-1"), ("images", "--limit", "0"), ("deadletter", "list", "--limit", "-5")]
)
def test_impossible_limits_are_usage_errors(store: str, args: tuple[str, ...]) -> None:
    """A negative or zero limit is refused, not read as 'all but one' or 'no limit'."""
    proc = corral(*args, "--store", store)
    assert proc.returncode == 2
    assert "--limit" in proc.stderr


def test_an_upper_case_scheme_names_no_new_store(tmp_path: Path) -> None:
    """SQLITE:// is sqlite://: a read of a missing file is an error, not a new empty store."""
    missing = tmp_path / "nope.db"
    proc = corral("findings", "list", "--store", f"SQLITE:///{missing}")
    assert proc.returncode == 1
    assert "no such SQLite file" in proc.stderr
    assert not missing.exists()


def test_store_migrate_creates_a_new_sqlite_store(tmp_path: Path) -> None:
    """`corral store migrate` is how a store is made: it does not ask for the file to exist."""
    path = tmp_path / "new.db"
    proc = corral("store", "migrate", "--store", f"sqlite:///{path}")
    assert proc.returncode == 0, proc.stderr
    assert path.exists()


@pytest.mark.parametrize("letter_id", ["99999999999999999999999", "²", "abc"])
def test_an_impossible_dead_letter_id_is_one_line(store: str, letter_id: str) -> None:
    """An id no store could hold is 'no such dead letter', not an internal error."""
    proc = corral("deadletter", "show", letter_id, "--store", store)
    assert proc.returncode == 1
    assert proc.stderr.startswith("corral: error: no dead letter with id")


def test_the_deliveries_table_prints_a_remote_error_as_harmless_text(capsys: pytest.CaptureFixture[str]) -> None:
    """A sink's first failure can quote what a remote server answered: its control text is replaced too."""
    from corral.cli.pipeline_commands import _print_sinks

    reason = "webhook:siem: HTTP 500: \x1b]0;PWNED\x07\x1b[2J\u202eevil [bold]x[/bold]"
    _print_sinks({"webhook:siem": {"sent": 0, "failed": 1, "pending": 0, "first_failure": reason}})
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert "\ufffd]0;PWNED" in out
