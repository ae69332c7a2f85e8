variable "project_id" {
  description = "Project that hosts the Corral functions, topics and secrets."
  type        = string
}

variable "region" {
  description = "Region of the functions, the Eventarc triggers and the scheduler jobs."
  type        = string
  default     = "europe-west1"
}

variable "organization_id" {
  description = "Numeric organization id whose Security Command Center findings are exported."
  type        = string
}

variable "scc_filter" {
  description = "SCC notification filter: which findings are published. The default keeps active container findings of medium severity or higher."
  type        = string
  default     = "state = \"ACTIVE\" AND (severity = \"CRITICAL\" OR severity = \"HIGH\" OR severity = \"MEDIUM\") AND (resource.type : \"container\" OR resource.type : \"k8s\" OR resource.type = \"google.run.Service\" OR category : \"KUBERNETES\" OR category : \"GKE\" OR category : \"CONTAINER\")"
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
  description = "Serverless VPC Access connector for a private PostgreSQL store (projects/.../locations/.../connectors/...); empty for none."
  type        = string
  default     = ""
}

variable "hub_enabled" {
  description = "Deploy the hub consumer of relayed OCSF findings (topic corral-relay)."
  type        = bool
  default     = true
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
