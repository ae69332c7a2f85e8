output "scc_topic" {
  description = "Topic the SCC notification config publishes to."
  value       = google_pubsub_topic.scc.id
}

output "dead_letter_topic" {
  description = "Where undeliverable SCC notifications are kept (push delivery)."
  value       = google_pubsub_topic.dead_letter.id
}

output "relay_topic" {
  description = "Topic spokes relay normalized OCSF findings to (hub layout)."
  value       = var.hub_enabled ? google_pubsub_topic.relay[0].id : null
}

output "runtime_service_account" {
  description = "Identity of the functions. They reach Cloud SQL by private IP with psycopg and the password in the store secret, so no Cloud SQL IAM role is needed; grant what your own store needs otherwise."
  value       = google_service_account.runtime.email
}

output "secrets" {
  description = "Secret Manager secrets that need a version before the second apply (secrets_ready = true)."
  value       = sorted([for secret in google_secret_manager_secret.corral : secret.secret_id])
}

output "sql_instance" {
  description = "Cloud SQL instance (connection name) and its private IP, for the store URL postgresql://corral:PASSWORD@IP/corral?sslmode=require."
  value       = var.cloud_sql ? { connection_name = google_sql_database_instance.corral[0].connection_name, private_ip = google_sql_database_instance.corral[0].private_ip_address } : null
}

output "eventarc_trigger" {
  description = "With delivery = \"eventarc\": the Eventarc trigger whose Pub/Sub subscription gets the dead-letter policy (docs/deploy.md)."
  value       = var.delivery == "eventarc" && var.secrets_ready ? google_cloudfunctions2_function.corral["corral-scc"].event_trigger[0].trigger : null
}
