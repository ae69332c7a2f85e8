terraform {
  required_version = ">= 1.5"
  required_providers {
    google = {
      source = "hashicorp/google"
      # The v2 SCC notification configs (organization, folder, project) and build_config's
      # service_account are in 6.x.
      version = ">= 6.10, < 7.0"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}
