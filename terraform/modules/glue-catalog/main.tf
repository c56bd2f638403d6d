data "aws_caller_identity" "current" {}

locals {
  # namespace => Glue database name
  databases = { for ns in var.namespaces : ns => "${var.database_prefix}${ns}" }
}

resource "aws_glue_catalog_database" "this" {
  for_each = local.databases

  name         = each.value
  description  = "FinanceLake ${each.key} layer of ${var.name} (Iceberg namespace ${each.key})"
  location_uri = "${var.warehouse_uri}/${each.value}.db"

  tags = var.tags
}

# Account-level singleton: one per account and region, whatever the Terraform state.
resource "aws_glue_data_catalog_encryption_settings" "this" {
  count = var.manage_catalog_encryption ? 1 : 0

  catalog_id = data.aws_caller_identity.current.account_id

  data_catalog_encryption_settings {
    connection_password_encryption {
      aws_kms_key_id                       = var.kms_key_arn
      return_connection_password_encrypted = true
    }

    encryption_at_rest {
      catalog_encryption_mode = "SSE-KMS"
      sse_aws_kms_key_id      = var.kms_key_arn
    }
  }
}
