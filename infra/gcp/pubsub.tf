# Topics: SCC notifications, their dead letters, and the relay topic of the hub layout.

data "google_project" "this" {
  depends_on = [google_project_service.corral]
}

locals {
  pubsub_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

resource "google_pubsub_topic" "scc" {
  #checkov:skip=CKV_GCP_83:Google-managed encryption; a CMEK key ring is the deployer's choice and adds key IAM to every publisher.
  name                       = "corral-scc-findings"
  message_retention_duration = "604800s"

  depends_on = [google_project_service.corral]
}

resource "google_pubsub_topic" "dead_letter" {
  #checkov:skip=CKV_GCP_83:Google-managed encryption, as for the main topic.
  name                       = "corral-scc-findings-dead-letter"
  message_retention_duration = "604800s"

  depends_on = [google_project_service.corral]
}

# Dead letters are kept here for inspection and replay (seek or republish); nothing consumes them.
resource "google_pubsub_subscription" "dead_letter_hold" {
  name                       = "corral-scc-dead-letter-hold"
  topic                      = google_pubsub_topic.dead_letter.id
  message_retention_duration = "604800s"
  retain_acked_messages      = true
  expiration_policy {
    ttl = ""
  }
}

resource "google_pubsub_topic" "relay" {
  #checkov:skip=CKV_GCP_83:Google-managed encryption, as for the main topic.
  count = var.hub_enabled ? 1 : 0
  name  = "corral-relay"
  # Kept a week, as SCC's: a hub outage longer than the subscription's own retention can be caught
  # up on with `gcloud pubsub subscriptions seek`.
  message_retention_duration = "604800s"

  depends_on = [google_project_service.corral]
}

# The spokes' relay sinks publish here as their own identities (their runtime service accounts in
# other projects): each member in relay_publishers may publish to this topic, and to nothing else.
resource "google_pubsub_topic_iam_member" "relay_publisher" {
  for_each = var.hub_enabled ? toset(var.relay_publishers) : toset([])
  topic    = google_pubsub_topic.relay[0].id
  role     = "roles/pubsub.publisher"
  member   = each.value
}

# Push delivery: Pub/Sub retries with backoff and, after 10 attempts, moves the message to the
# dead-letter topic instead of dropping it. The OIDC token is checked by Cloud Run's IAM and
# again by the function itself.
# This is the default path because its retries end in the dead-letter topic; Eventarc's own
# subscription needs one gcloud command for that (docs/deploy.md).
resource "google_pubsub_subscription" "scc_push" {
  count = local.push
  name  = "corral-scc-push"
  topic = google_pubsub_topic.scc.id
  # A push is acknowledged by the function's answer; a deadline shorter than the function's
  # timeout would redeliver a slow delivery while it is still running.
  ack_deadline_seconds       = local.function_timeout_seconds
  message_retention_duration = "604800s"
  expiration_policy {
    ttl = ""
  }
  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }
  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = 10
  }
  push_config {
    push_endpoint = local.push_url
    oidc_token {
      service_account_email = google_service_account.push.email
      audience              = local.push_audience
    }
  }
  # Pushes start once the function answers there and the push identity may invoke it.
  depends_on = [google_cloudfunctions2_function.scc_push, google_cloud_run_service_iam_member.push_invokes]
}

# Dead lettering needs the Pub/Sub service agent to publish to the dead-letter topic and to
# acknowledge on the source subscription.
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  topic  = google_pubsub_topic.dead_letter.id
  role   = "roles/pubsub.publisher"
  member = local.pubsub_agent
}

resource "google_pubsub_subscription_iam_member" "dead_letter_subscriber" {
  count        = local.push
  subscription = google_pubsub_subscription.scc_push[0].id
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}

# The push subscription signs its OIDC tokens as the push service account.
resource "google_service_account_iam_member" "pubsub_token_creator" {
  service_account_id = google_service_account.push.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_agent
}

# --- Security Command Center ------------------------------------------------------------------
#
# One v2 notification config (location "global") at the level scc_parent names: the organization,
# a folder or a project. SCC publishes each finding's every change, so the INACTIVE version of a
# fixed finding and mute changes reach Corral and close or update what it stored.

locals {
  # Exactly one of the three exists.
  scc_service_account = one(concat(
    google_scc_v2_organization_notification_config.corral[*].service_account,
    google_scc_v2_folder_notification_config.corral[*].service_account,
    google_scc_v2_project_notification_config.corral[*].service_account,
  ))
}

resource "google_scc_v2_organization_notification_config" "corral" {
  count        = var.scc_parent_type == "organization" ? 1 : 0
  config_id    = "corral-container-findings"
  organization = var.scc_parent_id
  location     = "global"
  description  = "Corral: container-related findings to Pub/Sub"
  pubsub_topic = google_pubsub_topic.scc.id
  streaming_config {
    filter = var.scc_filter
  }

  depends_on = [google_project_service.corral]
}

resource "google_scc_v2_folder_notification_config" "corral" {
  count        = var.scc_parent_type == "folder" ? 1 : 0
  config_id    = "corral-container-findings"
  folder       = var.scc_parent_id
  location     = "global"
  description  = "Corral: container-related findings to Pub/Sub"
  pubsub_topic = google_pubsub_topic.scc.id
  streaming_config {
    filter = var.scc_filter
  }

  depends_on = [google_project_service.corral]
}

resource "google_scc_v2_project_notification_config" "corral" {
  count        = var.scc_parent_type == "project" ? 1 : 0
  config_id    = "corral-container-findings"
  project      = var.scc_parent_id
  location     = "global"
  description  = "Corral: container-related findings to Pub/Sub"
  pubsub_topic = google_pubsub_topic.scc.id
  streaming_config {
    filter = var.scc_filter
  }

  depends_on = [google_project_service.corral]
}

# SCC publishes as the notification config's own service account.
resource "google_pubsub_topic_iam_member" "scc_publisher" {
  topic  = google_pubsub_topic.scc.id
  role   = "roles/pubsub.publisher"
  member = "serviceAccount:${local.scc_service_account}"
}
