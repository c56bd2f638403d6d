variable "name" {
  type        = string
  description = "Prefix of the role names, e.g. financelake-prod."
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource of the module, on top of the provider's default_tags."
  default     = {}
}

variable "oidc_provider_arn" {
  type        = string
  description = "ARN of the EKS cluster's IAM OIDC provider."
}

variable "oidc_issuer" {
  type        = string
  description = "OIDC issuer of the cluster without https:// (e.g. oidc.eks.eu-west-1.amazonaws.com/id/ABC...)."

  validation {
    condition     = !startswith(var.oidc_issuer, "https://")
    error_message = "oidc_issuer must not start with https://."
  }
}

variable "namespace" {
  type        = string
  description = "Kubernetes namespace of the FinanceLake release (the service accounts live there)."
  default     = "financelake"
}

variable "bucket_arn" {
  type        = string
  description = "ARN of the warehouse bucket."
}

variable "kms_key_arn" {
  type        = string
  description = "ARN of the KMS key of the warehouse bucket (and of the Glue Data Catalog)."
}

variable "glue_database_names" {
  type        = list(string)
  description = "Glue databases (Iceberg namespaces) the roles may use."
}

variable "region" {
  type        = string
  description = "Region of the Glue Data Catalog."
}

variable "account_id" {
  type        = string
  description = "Account ID owning the Glue Data Catalog."
}
