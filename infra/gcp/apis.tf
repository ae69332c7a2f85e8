# Every API the resources of this folder call, enabled in the project before anything else is
# created (tests/deploy/test_gcp_terraform.py maps each resource type here to its API).

locals {
  apis = toset([
    "artifactregistry.googleapis.com",     # Cloud Functions keeps the built images there
    "cloudbuild.googleapis.com",           # Cloud Functions builds the source with Cloud Build
    "cloudfunctions.googleapis.com",       # google_cloudfunctions2_function
    "cloudresourcemanager.googleapis.com", # data.google_project, google_project_iam_member
    "cloudscheduler.googleapis.com",       # google_cloud_scheduler_job
    "compute.googleapis.com",              # google_compute_global_address (Cloud SQL private range)
    "eventarc.googleapis.com",             # the functions' event triggers
    "iam.googleapis.com",                  # google_service_account and its IAM
    "logging.googleapis.com",              # build and function logs
    "pubsub.googleapis.com",               # topics and subscriptions
    "run.googleapis.com",                  # 2nd-gen functions are Cloud Run services
    "secretmanager.googleapis.com",        # google_secret_manager_secret
    "securitycenter.googleapis.com",       # the SCC notification config
    "servicenetworking.googleapis.com",    # private services access for Cloud SQL
    "sqladmin.googleapis.com",             # google_sql_database_instance
    "storage.googleapis.com",              # the source bucket
    "vpcaccess.googleapis.com",            # the Serverless VPC Access connector to Cloud SQL
  ])
}

resource "google_project_service" "corral" {
  for_each = local.apis
  project  = var.project_id
  service  = each.value
  # Other workloads of the project may use the same APIs: removing Corral must not turn them off.
  disable_on_destroy = false
}
