# The central store: PostgreSQL on Cloud SQL, reached over private IP through a Serverless VPC
# Access connector (the functions hold plain psycopg connections; there is no Cloud SQL Auth
# Proxy in Cloud Functions). Set cloud_sql = false to bring your own PostgreSQL (or DynamoDB)
# and a vpc_connector of your own. docs/deploy.md covers connection limits and pooling.

locals {
  sql_enabled = var.cloud_sql
  # The connector the functions use: ours with Cloud SQL, the deployer's otherwise (may be empty).
  vpc_connector = local.sql_enabled ? google_vpc_access_connector.corral[0].id : var.vpc_connector
}

data "google_compute_network" "corral" {
  count = local.sql_enabled ? 1 : 0
  name  = var.network

  depends_on = [google_project_service.corral]
}

# Private services access: a range of the VPC that Cloud SQL's producer network peers with.
resource "google_compute_global_address" "sql_range" {
  count         = local.sql_enabled ? 1 : 0
  name          = "corral-sql-range"
  purpose       = "VPC_PEERING"
  address_type  = "INTERNAL"
  prefix_length = 20
  network       = data.google_compute_network.corral[0].id
}

resource "google_service_networking_connection" "sql" {
  count                   = local.sql_enabled ? 1 : 0
  network                 = data.google_compute_network.corral[0].id
  service                 = "servicenetworking.googleapis.com"
  reserved_peering_ranges = [google_compute_global_address.sql_range[0].name]
}

resource "google_vpc_access_connector" "corral" {
  count         = local.sql_enabled ? 1 : 0
  name          = "corral-connector"
  region        = var.region
  network       = var.network
  ip_cidr_range = var.connector_cidr
  min_instances = 2
  max_instances = 3

  depends_on = [google_project_service.corral]
}

resource "google_sql_database_instance" "corral" {
  #checkov:skip=CKV_GCP_6:ssl_mode ENCRYPTED_ONLY refuses unencrypted connections; client certificates (TRUSTED_CLIENT_CERTIFICATE_REQUIRED) would need a certificate per function instance.
  #checkov:skip=CKV2_GCP_13:log_duration logs every statement, about a dozen per finding; slow statements are what matter, and log_min_duration_statement can be lowered to log them.
  count               = local.sql_enabled ? 1 : 0
  name                = "corral-store"
  region              = var.region
  database_version    = "POSTGRES_18"
  deletion_protection = true

  settings {
    tier              = var.sql_tier
    edition           = "ENTERPRISE"
    availability_type = var.sql_availability
    ip_configuration {
      ipv4_enabled    = false
      private_network = data.google_compute_network.corral[0].id
      ssl_mode        = "ENCRYPTED_ONLY"
    }
    backup_configuration {
      enabled                        = true
      point_in_time_recovery_enabled = true
    }
    # Every function instance holds one connection; max_instances bounds how many there are.
    database_flags {
      name  = "max_connections"
      value = tostring(var.sql_max_connections)
    }
    database_flags {
      name  = "log_checkpoints"
      value = "on"
    }
    database_flags {
      name  = "log_connections"
      value = "on"
    }
    database_flags {
      name  = "log_hostname"
      value = "on"
    }
    database_flags {
      name  = "log_disconnections"
      value = "on"
    }
    database_flags {
      name  = "log_lock_waits"
      value = "on"
    }
    database_flags {
      name  = "log_min_duration_statement"
      value = "-1"
    }
    database_flags {
      name  = "log_min_messages"
      value = "error"
    }
    database_flags {
      name  = "log_min_error_statement"
      value = "error"
    }
    database_flags {
      name  = "log_temp_files"
      value = "0"
    }
    database_flags {
      name  = "log_statement"
      value = "ddl"
    }
    database_flags {
      name  = "cloudsql.enable_pgaudit"
      value = "on"
    }
  }

  depends_on = [google_service_networking_connection.sql]
}

resource "google_sql_database" "corral" {
  count    = local.sql_enabled ? 1 : 0
  name     = "corral"
  instance = google_sql_database_instance.corral[0].name
}

# The database user is created outside Terraform, so that its password never enters the state:
# `gcloud sql users create corral --instance=corral-store --password=...`, then the store URL goes
# into Secret Manager (docs/deploy.md, the two-step first deployment).
