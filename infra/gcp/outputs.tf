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
  description = "Identity of the functions; grant it access to the store (e.g. roles/cloudsql.client)."
  value       = google_service_account.runtime.email
}
