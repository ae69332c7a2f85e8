variable "project_id" {
  description = "Project that hosts the Corral functions, topics and secrets."
  type        = string
}

variable "region" {
  description = "Region of the functions, the Eventarc triggers and the scheduler jobs."
  type        = string
  default     = "europe-west1"
}

variable "scc_parent_type" {
  description = "Where the SCC notification config lives, which decides whose findings it exports: \"organization\", \"folder\" or \"project\"."
  type        = string
  default     = "organization"
  validation {
    condition     = contains(["organization", "folder", "project"], var.scc_parent_type)
    error_message = "scc_parent_type must be \"organization\", \"folder\" or \"project\"."
  }
}

variable "scc_parent_id" {
  description = "Numeric id of that organization or folder, or the project id."
  type        = string
}

variable "scc_filter" {
  description = "SCC notification filter: which findings are published. The default keeps container findings of medium severity or higher in every state and mute state, so that a finding's INACTIVE version and its mute changes reach Corral too."
  type        = string
  default     = "(severity = \"CRITICAL\" OR severity = \"HIGH\" OR severity = \"MEDIUM\") AND (resource.type : \"container\" OR resource.type : \"k8s\" OR resource.type = \"google.run.Service\" OR category : \"KUBERNETES\" OR category : \"GKE\" OR category : \"CONTAINER\")"
}

variable "secrets_ready" {
  description = "Whether every secret has a version yet. The first apply runs with false (no functions), the deployer adds the versions, the second apply runs with true."
  type        = bool
  default     = false
}

variable "cloud_sql" {
  description = "Provision the PostgreSQL store on Cloud SQL (private IP, VPC connector); false to bring your own store and vpc_connector."
  type        = bool
  default     = true
}

variable "network" {
  description = "VPC network the Cloud SQL instance and the VPC connector attach to."
  type        = string
  default     = "default"
}

variable "connector_cidr" {
  description = "Unused /28 of that network for the Serverless VPC Access connector."
  type        = string
  default     = "10.8.0.0/28"
}

variable "sql_tier" {
  description = "Cloud SQL machine type (Enterprise edition)."
  type        = string
  default     = "db-custom-1-3840"
}

variable "sql_availability" {
  description = "ZONAL, or REGIONAL for a standby in a second zone (twice the price)."
  type        = string
  default     = "ZONAL"
}

variable "sql_max_connections" {
  description = "PostgreSQL max_connections; at least one per function instance (max_instances times the functions) plus operators."
  type        = number
  default     = 100
}

variable "delivery" {
  description = "How SCC notifications reach Corral: \"eventarc\" (CloudEvent function, Eventarc retries) or \"push\" (HTTP function behind a push subscription with a dead-letter topic and OIDC)."
  type        = string
  default     = "push"
  validation {
    condition     = contains(["eventarc", "push"], var.delivery)
    error_message = "delivery must be \"eventarc\" or \"push\"."
  }
}

variable "source_archive" {
  description = "Path of the source zip built by `make package` (dist/gcp/corral-gcp.zip)."
  type        = string
  default     = "../../dist/gcp/corral-gcp.zip"
}

variable "store_secret_id" {
  description = "Secret Manager secret (id, not value) holding the store URL, e.g. postgresql://user:password@host/db. The deployer adds its version."
  type        = string
  default     = "corral-store-url"
}

variable "sink_secrets" {
  description = "Sink secrets as { ENV_VAR_NAME = secret_id }; the secrets are created empty here (names only) and exposed to the functions as environment secrets."
  type        = map(string)
  default     = {}
}

variable "vpc_connector" {
  description = "With cloud_sql = false: a Serverless VPC Access connector for your own private PostgreSQL store (projects/.../locations/.../connectors/...); empty for none."
  type        = string
  default     = ""
}

variable "hub_enabled" {
  description = "Deploy the hub consumer of relayed OCSF findings (topic corral-relay)."
  type        = bool
  default     = true
}

variable "relay_publishers" {
  description = "With hub_enabled: the spokes' identities that may publish to corral-relay, as IAM members (serviceAccount:corral-fn@SPOKE_PROJECT.iam.gserviceaccount.com); each gets roles/pubsub.publisher on that topic only."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for member in var.relay_publishers : can(regex("^(serviceAccount|group|principal|principalSet):.+", member))])
    error_message = "relay_publishers takes IAM members such as serviceAccount:NAME@PROJECT.iam.gserviceaccount.com (never allUsers or allAuthenticatedUsers)."
  }
}

variable "redrive_schedule" {
  description = "Cron schedule of the redrive job (pending deliveries that are due)."
  type        = string
  default     = "*/5 * * * *"
}

variable "source_check_schedule" {
  description = "Cron schedule of the silent-source check."
  type        = string
  default     = "17 * * * *"
}

variable "max_instances" {
  description = "Upper bound of instances per function, which bounds the connections to the store."
  type        = number
  default     = 10
}

variable "config_path" {
  description = "corral.toml path inside the source zip (make package CORRAL_CONFIG_FILE=... puts it there); empty for built-in defaults."
  type        = string
  default     = ""
}
