variable "name" {
  type        = string
  description = "Name prefix of the module's non-bucket resources (KMS key alias), e.g. financelake-prod."
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource of the module, on top of the provider's default_tags."
  default     = {}
}

variable "bucket_name" {
  type        = string
  description = "Globally unique name of the warehouse bucket (Iceberg tables under warehouse/, the model registry under models/)."
}

variable "log_bucket_name" {
  type        = string
  description = "Name of the bucket receiving the warehouse bucket's server access logs. Null: <bucket_name>-access-logs."
  default     = null
}

variable "noncurrent_version_expiration_days" {
  type        = number
  description = "Days after which overwritten or deleted object versions are removed (Iceberg itself keeps history as snapshots; this is the undo window for mistakes outside it)."
  default     = 30

  validation {
    condition     = var.noncurrent_version_expiration_days >= 1
    error_message = "noncurrent_version_expiration_days must be at least 1."
  }
}

variable "access_log_retention_days" {
  type        = number
  description = "Days the server access logs are kept."
  default     = 365

  validation {
    condition     = var.access_log_retention_days >= 1
    error_message = "access_log_retention_days must be at least 1."
  }
}

variable "force_destroy" {
  type        = bool
  description = "Let `terraform destroy` delete non-empty buckets (for throwaway environments only)."
  default     = false
}
