# The Corral functions (Cloud Functions 2nd gen), their identities, secrets and schedules.

locals {
  # The push function's deterministic run.app URL (its Cloud Run service has the function's name).
  # Cloud Run admits an ID token only when its audience is the service's run.app URL (or a custom
  # audience set on the service), so Pub/Sub pushes to this URL with it as the audience, and the
  # function checks the same value; known before the function exists, so nothing is circular.
  push_url      = "https://corral-scc-push-${data.google_project.this.number}.${var.region}.run.app"
  push_audience = local.push_url
  # Pub/Sub's ack deadline must cover a whole invocation, or a slow delivery is delivered twice.
  function_timeout_seconds = 120
  # Settings every function gets; secrets come from Secret Manager, never as plain values.
  common_env = {
    CORRAL_CONFIG = var.config_path
  }
  secrets = merge({ CORRAL_STORE = var.store_secret_id }, var.sink_secrets)
  # Where Cloud Functions (2nd gen) keeps its copy of the source, which Cloud Build reads.
  gcf_sources_bucket = "gcf-v2-sources-${data.google_project.this.number}-${var.region}"
}

# --- source ------------------------------------------------------------------------------------

resource "google_storage_bucket" "source" {
  #checkov:skip=CKV_GCP_62:Holds only function source zips; access is audited by Cloud Audit Logs (data access) instead of a second logging bucket.
  #checkov:skip=CKV_GCP_78:Each upload has a content-hash name, so an object is never overwritten and versioning adds nothing.
  name                        = "${var.project_id}-corral-source"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  depends_on = [google_project_service.corral]
}

resource "google_storage_bucket_object" "source" {
  name   = "corral-gcp-${filemd5(var.source_archive)}.zip"
  bucket = google_storage_bucket.source.name
  source = var.source_archive
}

# --- identities ---------------------------------------------------------------------------------

resource "google_service_account" "runtime" {
  account_id   = "corral-fn"
  display_name = "Corral functions (runtime)"

  depends_on = [google_project_service.corral]
}

# Cloud Build runs as this identity, not as the project's default compute or Cloud Build
# account (new projects no longer grant those the roles a build needs).
resource "google_service_account" "build" {
  account_id   = "corral-build"
  display_name = "Corral function builds"

  depends_on = [google_project_service.corral]
}

resource "google_project_iam_member" "build" {
  for_each = toset(["roles/logging.logWriter", "roles/artifactregistry.writer"])
  project  = var.project_id
  role     = each.value
  member   = "serviceAccount:${google_service_account.build.email}"
}

resource "google_storage_bucket_iam_member" "build_reads_source" {
  bucket = google_storage_bucket.source.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.build.email}"
}

# Cloud Functions (2nd gen) copies the source zip into its own bucket,
# gcf-v2-sources-PROJECT_NUMBER-REGION, and Cloud Build fetches it from there as this identity, so
# the build also reads that bucket. The bucket is Google-managed and may not exist before the
# first deployment, so the grant is on the project, with a condition naming that bucket only (the
# bucket itself for listing, its objects for reading: nothing else, not even
# gcf-v2-sources-...-europe-west10 from europe-west1).
resource "google_project_iam_member" "build_reads_gcf_sources" {
  project = var.project_id
  role    = "roles/storage.objectViewer"
  member  = "serviceAccount:${google_service_account.build.email}"
  condition {
    title       = "corral-gcf-v2-sources"
    description = "Only the bucket Cloud Functions copies the function source to"
    expression  = "resource.name == \"projects/_/buckets/${local.gcf_sources_bucket}\" || resource.name.startsWith(\"projects/_/buckets/${local.gcf_sources_bucket}/\")"
  }
}

resource "google_service_account" "trigger" {
  account_id   = "corral-trigger"
  display_name = "Corral Eventarc triggers"

  depends_on = [google_project_service.corral]
}

resource "google_service_account" "push" {
  account_id   = "corral-push"
  display_name = "Corral Pub/Sub push (OIDC token identity)"

  depends_on = [google_project_service.corral]
}

resource "google_service_account" "scheduler" {
  account_id   = "corral-scheduler"
  display_name = "Corral scheduled jobs"

  depends_on = [google_project_service.corral]
}

# Eventarc's trigger identity must be able to receive events (project-level role by design).
resource "google_project_iam_member" "trigger_receiver" {
  project = var.project_id
  role    = "roles/eventarc.eventReceiver"
  member  = "serviceAccount:${google_service_account.trigger.email}"
}

# --- secrets (names only; the deployer adds versions) -------------------------------------------
#
# A function cannot be deployed while a secret it references has no version, so the first
# deployment takes two steps (docs/deploy.md): apply with secrets_ready = false (everything but
# the functions and what points at them), add a version to each secret, apply with
# secrets_ready = true.

resource "google_secret_manager_secret" "corral" {
  #checkov:skip=CKV_GCP_128:Secret Manager encrypts with Google-managed keys; CMEK per secret is the deployer's choice.
  for_each  = toset(values(local.secrets))
  secret_id = each.value
  replication {
    auto {}
  }

  depends_on = [google_project_service.corral]
}

resource "google_secret_manager_secret_iam_member" "runtime_reads" {
  for_each  = google_secret_manager_secret.corral
  secret_id = each.value.id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.runtime.email}"
}

# --- functions ----------------------------------------------------------------------------------

locals {
  all_functions = merge(
    var.delivery == "eventarc" ? { "corral-scc" = { entry_point = "scc_findings", topic = google_pubsub_topic.scc.id } } : {},
    var.delivery == "push" ? { "corral-scc-push" = { entry_point = "scc_push", topic = null } } : {},
    var.hub_enabled ? { "corral-hub" = { entry_point = "hub", topic = google_pubsub_topic.relay[0].id } } : {},
    {
      "corral-redrive"      = { entry_point = "redrive", topic = null }
      "corral-source-check" = { entry_point = "source_check", topic = null }
    },
  )
  functions = var.secrets_ready ? local.all_functions : {}
  scheduled = var.secrets_ready ? toset(["corral-redrive", "corral-source-check"]) : toset([])
  push      = var.delivery == "push" && var.secrets_ready ? 1 : 0
}

resource "google_cloudfunctions2_function" "corral" {
  for_each = { for name, fn in local.functions : name => fn if name != "corral-scc-push" }
  name     = each.key
  location = var.region

  build_config {
    runtime         = "python311"
    entry_point     = each.value.entry_point
    service_account = google_service_account.build.id
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    available_memory               = "512M"
    timeout_seconds                = local.function_timeout_seconds
    max_instance_count             = var.max_instances
    ingress_settings               = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision = true
    service_account_email          = google_service_account.runtime.email
    vpc_connector                  = local.vpc_connector == "" ? null : local.vpc_connector
    environment_variables          = local.common_env
    dynamic "secret_environment_variables" {
      for_each = local.secrets
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = google_secret_manager_secret.corral[secret_environment_variables.value].secret_id
        version    = "latest"
      }
    }
  }

  dynamic "event_trigger" {
    for_each = each.value.topic == null ? [] : [each.value.topic]
    content {
      trigger_region        = var.region
      event_type            = "google.cloud.pubsub.topic.v1.messagePublished"
      pubsub_topic          = event_trigger.value
      service_account_email = google_service_account.trigger.email
      # Pub/Sub-triggered functions are not retried unless told to: a store outage must redeliver.
      retry_policy = "RETRY_POLICY_RETRY"
    }
  }

  depends_on = [google_secret_manager_secret_iam_member.runtime_reads, google_project_iam_member.build, google_project_iam_member.build_reads_gcf_sources]
}

# The push endpoint: internal ingress, which admits Pub/Sub pushes from this project and nothing
# from the internet; authentication is Cloud Run IAM (push service account only) plus the
# function's own OIDC check.
resource "google_cloudfunctions2_function" "scc_push" {
  count    = local.push
  name     = "corral-scc-push"
  location = var.region

  build_config {
    runtime         = "python311"
    entry_point     = "scc_push"
    service_account = google_service_account.build.id
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    available_memory               = "512M"
    timeout_seconds                = local.function_timeout_seconds
    max_instance_count             = var.max_instances
    ingress_settings               = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision = true
    service_account_email          = google_service_account.runtime.email
    vpc_connector                  = local.vpc_connector == "" ? null : local.vpc_connector
    environment_variables = merge(local.common_env, {
      CORRAL_PUSH_AUDIENCE        = local.push_audience
      CORRAL_PUSH_SERVICE_ACCOUNT = google_service_account.push.email
    })
    dynamic "secret_environment_variables" {
      for_each = local.secrets
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = google_secret_manager_secret.corral[secret_environment_variables.value].secret_id
        version    = "latest"
      }
    }
  }

  depends_on = [google_secret_manager_secret_iam_member.runtime_reads, google_project_iam_member.build, google_project_iam_member.build_reads_gcf_sources]
}

# Who may invoke what: Eventarc's identity the event functions, the push identity the push
# function, the scheduler's identity the two scheduled ones. Nobody else (no allUsers).
resource "google_cloud_run_service_iam_member" "trigger_invokes" {
  for_each = { for name, fn in local.functions : name => fn if fn.topic != null }
  location = var.region
  service  = google_cloudfunctions2_function.corral[each.key].service_config[0].service
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.trigger.email}"
}

resource "google_cloud_run_service_iam_member" "push_invokes" {
  count    = local.push
  location = var.region
  service  = google_cloudfunctions2_function.scc_push[0].service_config[0].service
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.push.email}"
}

resource "google_cloud_run_service_iam_member" "scheduler_invokes" {
  for_each = local.scheduled
  location = var.region
  service  = google_cloudfunctions2_function.corral[each.key].service_config[0].service
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.scheduler.email}"
}

# --- schedules ----------------------------------------------------------------------------------

resource "google_cloud_scheduler_job" "corral" {
  for_each = {
    for name, schedule in {
      "corral-redrive"      = var.redrive_schedule
      "corral-source-check" = var.source_check_schedule
    } : name => schedule if contains(local.scheduled, name)
  }
  name      = each.key
  region    = var.region
  schedule  = each.value
  time_zone = "Etc/UTC"
  retry_config {
    retry_count = 1
  }
  http_target {
    http_method = "POST"
    uri         = google_cloudfunctions2_function.corral[each.key].service_config[0].uri
    oidc_token {
      service_account_email = google_service_account.scheduler.email
      audience              = google_cloudfunctions2_function.corral[each.key].service_config[0].uri
    }
  }
}
