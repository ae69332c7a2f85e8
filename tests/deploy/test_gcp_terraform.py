"""Static checks of infra/gcp: providers cannot be downloaded here, so `terraform validate` cannot run.

Each resource and data source type is mapped to the Google API it calls, and every such API must
be enabled by the configuration itself; the SCC export, its filter, the ack deadline, the build
identity, the secrets' two-step and the Cloud SQL store are checked as written.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GCP = ROOT / "infra" / "gcp"

# The API each type calls (provider documentation, "API" / "Required APIs" of each resource).
API_OF_TYPE = {
    "google_project_service": "serviceusage.googleapis.com",
    "google_project": "cloudresourcemanager.googleapis.com",
    "google_project_iam_member": "cloudresourcemanager.googleapis.com",
    "google_storage_bucket": "storage.googleapis.com",
    "google_storage_bucket_object": "storage.googleapis.com",
    "google_storage_bucket_iam_member": "storage.googleapis.com",
    "google_service_account": "iam.googleapis.com",
    "google_service_account_iam_member": "iam.googleapis.com",
    "google_secret_manager_secret": "secretmanager.googleapis.com",
    "google_secret_manager_secret_iam_member": "secretmanager.googleapis.com",
    "google_cloudfunctions2_function": "cloudfunctions.googleapis.com",
    "google_cloud_run_service_iam_member": "run.googleapis.com",
    "google_cloud_scheduler_job": "cloudscheduler.googleapis.com",
    "google_pubsub_topic": "pubsub.googleapis.com",
    "google_pubsub_topic_iam_member": "pubsub.googleapis.com",
    "google_pubsub_subscription": "pubsub.googleapis.com",
    "google_pubsub_subscription_iam_member": "pubsub.googleapis.com",
    "google_scc_v2_organization_notification_config": "securitycenter.googleapis.com",
    "google_scc_v2_folder_notification_config": "securitycenter.googleapis.com",
    "google_scc_v2_project_notification_config": "securitycenter.googleapis.com",
    "google_compute_network": "compute.googleapis.com",
    "google_compute_global_address": "compute.googleapis.com",
    "google_service_networking_connection": "servicenetworking.googleapis.com",
    "google_vpc_access_connector": "vpcaccess.googleapis.com",
    "google_sql_database_instance": "sqladmin.googleapis.com",
    "google_sql_database": "sqladmin.googleapis.com",
}
# What a 2nd-gen function needs besides its own API: it is built by Cloud Build into Artifact
# Registry, runs on Cloud Run, is triggered through Eventarc and logs to Cloud Logging.
FUNCTION_APIS = {
    "cloudbuild.googleapis.com",
    "artifactregistry.googleapis.com",
    "run.googleapis.com",
    "eventarc.googleapis.com",
    "logging.googleapis.com",
}
# Service Usage itself is on in every project: it is how the others are enabled.
ALWAYS_ON = {"serviceusage.googleapis.com"}

BLOCK = re.compile(r'^(resource|data) "([a-z0-9_]+)" "([a-z0-9_]+)" \{', re.MULTILINE)


def text() -> str:
    """Every .tf file of infra/gcp, concatenated."""
    return "\n".join(p.read_text() for p in sorted(GCP.glob("*.tf")))


def blocks() -> dict[tuple[str, str, str], str]:
    """(kind, type, name) -> body of each resource and data block, found by matching braces."""
    source = text()
    found = {}
    for match in BLOCK.finditer(source):
        depth, end = 0, match.end() - 1
        for end in range(match.end() - 1, len(source)):
            depth += {"{": 1, "}": -1}.get(source[end], 0)
            if depth == 0:
                break
        found[(match[1], match[2], match[3])] = source[match.end() : end]
    return found


def enabled_apis() -> set[str]:
    """The services local.apis lists (infra/gcp/apis.tf)."""
    apis = (GCP / "apis.tf").read_text()
    listing = apis[apis.index("apis = toset([") : apis.index("])")]
    return set(re.findall(r'"([a-z0-9.-]+\.googleapis\.com)"', listing))


def variable_default(name: str) -> str:
    """The default of a string variable, unescaped."""
    variables = (GCP / "variables.tf").read_text()
    block = variables[variables.index(f'variable "{name}"') :]
    raw = re.search(r'default\s*=\s*"((?:[^"\\]|\\.)*)"', block)
    assert raw, name
    return raw[1].replace('\\"', '"')


def test_every_type_is_mapped_to_its_api() -> None:
    """A new resource type must be added to API_OF_TYPE (and its API enabled)."""
    types = {type_ for _, type_, _ in blocks()}
    assert types, "no resource found"
    assert types <= set(API_OF_TYPE), f"map these types to their API: {sorted(types - set(API_OF_TYPE))}"


def test_every_api_used_is_enabled() -> None:
    """Each type's API, and what functions need, is in google_project_service's list."""
    needed = {API_OF_TYPE[type_] for _, type_, _ in blocks()} | FUNCTION_APIS
    missing = needed - enabled_apis() - ALWAYS_ON
    assert not missing, f"enable these APIs in infra/gcp/apis.tf: {sorted(missing)}"
    assert "google_project_service" in {t for _, t, _ in blocks()}


def test_resources_wait_for_their_apis() -> None:
    """Resources that create things in a fresh project depend on the API enablement, directly or through a parent."""
    roots = {"google_storage_bucket", "google_service_account", "google_secret_manager_secret", "google_pubsub_topic"}
    roots |= {t for t in API_OF_TYPE if t.startswith("google_scc_v2_")} | {"google_vpc_access_connector"}
    for (kind, type_, name), body in blocks().items():
        if kind == "resource" and type_ in roots:
            assert "google_project_service.corral" in body, f"{type_}.{name} does not wait for the APIs"


def test_scc_export_is_v2_global_at_a_chosen_level() -> None:
    """The v2 notification config, location global, for an organization, a folder or a project."""
    found = {(t, n): b for (k, t, n), b in blocks().items() if k == "resource" and "scc" in t}
    assert {t for t, _ in found} == {
        "google_scc_v2_organization_notification_config",
        "google_scc_v2_folder_notification_config",
        "google_scc_v2_project_notification_config",
    }
    for body in found.values():
        assert re.search(r'location\s*=\s*"global"', body)
        assert "var.scc_parent_type" in body
    assert "google_scc_notification_config" not in text()


def test_default_filter_keeps_state_and_mute_changes() -> None:
    """No state or mute term: the INACTIVE version and mute changes must reach Corral."""
    default = variable_default("scc_filter")
    assert default
    assert not re.search(r"\bstate\b", default), default
    assert not re.search(r"\bmute\b", default), default


def test_ack_deadline_covers_the_function_timeout() -> None:
    """The push subscription's ack deadline is at least the functions' timeout."""
    source = text()
    timeout = int(re.search(r"function_timeout_seconds\s*=\s*(\d+)", source)[1])  # type: ignore[index]
    functions = [b for (k, t, _), b in blocks().items() if t == "google_cloudfunctions2_function"]
    assert functions
    assert all("timeout_seconds                = local.function_timeout_seconds" in b for b in functions)
    [push] = [b for (k, t, n), b in blocks().items() if t == "google_pubsub_subscription" and n == "scc_push"]
    deadline = re.search(r"ack_deadline_seconds\s*=\s*(\S+)", push)[1]  # type: ignore[index]
    assert deadline == "local.function_timeout_seconds" or int(deadline) >= timeout
    assert "dead_letter_policy" in push


def test_functions_build_as_their_own_service_account() -> None:
    """Every build_config names the build service account."""
    functions = [b for (k, t, _), b in blocks().items() if t == "google_cloudfunctions2_function"]
    assert all("service_account = google_service_account.build.id" in b for b in functions)


def test_functions_wait_for_secret_versions() -> None:
    """No function (nor what points at one) exists until secrets_ready says every secret has a version."""
    source = text()
    assert "functions = var.secrets_ready ? local.all_functions : {}" in source
    assert 'push      = var.delivery == "push" && var.secrets_ready ? 1 : 0' in source
    for (_, type_, name), body in blocks().items():
        if type_ == "google_cloudfunctions2_function":
            assert "local.functions" in body or "local.push" in body, name
    assert 'version    = "latest"' in source  # read at each cold start: rotation needs no redeploy


@pytest.mark.parametrize("setting", ['database_version    = "POSTGRES_', "ipv4_enabled    = false", "ENCRYPTED_ONLY"])
def test_cloud_sql_store_is_private_postgresql(setting: str) -> None:
    """The store is PostgreSQL on Cloud SQL, private IP only, TLS only."""
    [instance] = [b for (_, t, _), b in blocks().items() if t == "google_sql_database_instance"]
    assert setting in instance


def test_push_goes_to_the_function_s_own_run_app_url_with_it_as_audience() -> None:
    """Cloud Run's IAM admits a push token only for the service's run.app URL: endpoint, audience and check agree."""
    source = text()
    url = re.search(r'push_url\s*=\s*"([^"]+)"', source)[1]  # type: ignore[index]
    [function] = [b for (_, t, n), b in blocks().items() if t == "google_cloudfunctions2_function" and n == "scc_push"]
    name = re.search(r'name\s*=\s*"([^"]+)"', function)[1]  # type: ignore[index]
    # The deterministic URL: https://SERVICE-PROJECT_NUMBER.REGION.run.app (the service has the function's name).
    assert url == f"https://{name}-${{data.google_project.this.number}}.${{var.region}}.run.app"
    assert re.search(r"push_audience\s*=\s*local\.push_url", source)
    [push] = [b for (_, t, n), b in blocks().items() if t == "google_pubsub_subscription" and n == "scc_push"]
    assert "push_endpoint = local.push_url" in push
    assert "audience              = local.push_audience" in push
    assert "CORRAL_PUSH_AUDIENCE        = local.push_audience" in function


def test_no_function_is_reachable_from_the_internet() -> None:
    """Every function's ingress is internal: Pub/Sub, Eventarc and Scheduler of the project are internal callers."""
    functions = {n: b for (_, t, n), b in blocks().items() if t == "google_cloudfunctions2_function"}
    assert {"corral", "scc_push"} <= set(functions)
    for name, body in functions.items():
        assert re.search(r'ingress_settings\s*=\s*"ALLOW_INTERNAL_ONLY"', body), name


def test_the_build_identity_reads_the_bucket_cloud_functions_copies_the_source_to() -> None:
    """Cloud Build fetches the source from gcf-v2-sources-NUMBER-REGION as the build account: that bucket only."""
    found = blocks()
    assert ("data", "google_project", "this") in found
    source = text()
    bucket = re.search(r'gcf_sources_bucket\s*=\s*"([^"]+)"', source)
    assert bucket, "no local naming the gcf-v2-sources bucket"
    assert bucket[1] == "gcf-v2-sources-${data.google_project.this.number}-${var.region}"
    grants = [
        body
        for (kind, type_, _), body in found.items()
        if kind == "resource"
        and type_ == "google_project_iam_member"
        and '"roles/storage.objectViewer"' in body
        and "google_service_account.build.email" in body
    ]
    assert len(grants) == 1, "the build service account needs objectViewer on the gcf-v2-sources bucket"
    [grant] = grants
    expression = re.search(r'expression\s*=\s*"((?:[^"\\]|\\.)*)"', grant)
    assert expression, "a project-level storage grant without a condition reads every bucket"
    terms = expression[1].replace('\\"', '"').split(" || ")
    prefix = "projects/_/buckets/${local.gcf_sources_bucket}"
    assert terms == [f'resource.name == "{prefix}"', f'resource.name.startsWith("{prefix}/")'], terms
    # The existing grant on Corral's own bucket stays, and the functions wait for both.
    assert ("resource", "google_storage_bucket_iam_member", "build_reads_source") in found
    for (_, type_, name), body in found.items():
        if type_ == "google_cloudfunctions2_function":
            assert "google_project_iam_member.build_reads_gcf_sources" in body, name


def test_spokes_may_be_granted_publishing_on_the_relay_topic_only() -> None:
    """relay_publishers (none by default) each get roles/pubsub.publisher on corral-relay, and nothing else."""
    variables = (GCP / "variables.tf").read_text()
    block = variables[variables.index('variable "relay_publishers"') :]
    block = block[: block.index("\n}\n")]
    assert re.search(r"type\s*=\s*list\(string\)", block)
    assert re.search(r"default\s*=\s*\[\]", block)
    assert "allUsers" in block and "validation" in block, "public members are refused"
    [grant] = [
        b for (k, t, _), b in blocks().items() if t == "google_pubsub_topic_iam_member" and "var.relay_publishers" in b
    ]
    assert "for_each = var.hub_enabled ? toset(var.relay_publishers) : toset([])" in grant
    assert "topic    = google_pubsub_topic.relay[0].id" in grant
    assert 'role     = "roles/pubsub.publisher"' in grant
    assert "member   = each.value" in grant


def test_the_relay_topic_keeps_messages_for_catching_up() -> None:
    """Relayed findings can be replayed with seek after a hub outage, as SCC's can."""
    [relay] = [b for (k, t, n), b in blocks().items() if t == "google_pubsub_topic" and n == "relay"]
    assert re.search(r'message_retention_duration\s*=\s*"604800s"', relay)
