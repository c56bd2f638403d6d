variable "name" {
  type        = string
  description = "Name of the deployment (e.g. financelake-prod), written into the databases' descriptions."
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource of the module, on top of the provider's default_tags."
  default     = {}
}

variable "namespaces" {
  type        = list(string)
  description = "Iceberg namespaces of the app. pyiceberg's Glue catalog maps each namespace to a Glue database of the same name, and the app's namespaces are fixed: bronze, silver, gold."
  default     = ["bronze", "silver", "gold"]
}

variable "database_prefix" {
  type        = string
  description = "Prefix of the Glue database names. Keep \"\": pyiceberg maps namespace bronze to database bronze, and the app's namespace names are fixed, so a prefixed database would not be found. Separate environments by account or region instead."
  default     = ""

  validation {
    condition     = can(regex("^[a-z0-9_]*$", var.database_prefix))
    error_message = "database_prefix may hold only lowercase letters, digits and underscores."
  }
}

variable "warehouse_uri" {
  type        = string
  description = "Iceberg warehouse location, s3://bucket/warehouse. Each database's location is <warehouse_uri>/<database>.db, where pyiceberg puts tables by default."

  validation {
    condition     = startswith(var.warehouse_uri, "s3://") && !endswith(var.warehouse_uri, "/")
    error_message = "warehouse_uri must look like s3://bucket/prefix, without a trailing slash."
  }
}

variable "manage_catalog_encryption" {
  type        = bool
  description = "Manage the Glue Data Catalog encryption settings. They are an account-and-region singleton: let exactly one Terraform state own them (turn this off where another stack or another environment in the same account already does)."
  default     = true
}

variable "kms_key_arn" {
  type        = string
  description = "KMS key encrypting the Data Catalog's metadata at rest and the connection passwords, when manage_catalog_encryption is on. Every principal reading or writing the catalog needs kms:Decrypt (and kms:GenerateDataKey to write) on it."
}
