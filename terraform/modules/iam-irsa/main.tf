data "aws_partition" "current" {}

locals {
  partition = data.aws_partition.current.partition

  glue_catalog_arn   = "arn:${local.partition}:glue:${var.region}:${var.account_id}:catalog"
  glue_database_arns = [for db in var.glue_database_names : "arn:${local.partition}:glue:${var.region}:${var.account_id}:database/${db}"]
  glue_table_arns    = [for db in var.glue_database_names : "arn:${local.partition}:glue:${var.region}:${var.account_id}:table/${db}/*"]

  warehouse_objects = "${var.bucket_arn}/warehouse/*"
  models_objects    = "${var.bucket_arn}/models/*"

  # Role key => the Kubernetes service account (created by the chart) that alone may assume it.
  roles = {
    lake-reader = {
      service_account = "financelake-lake-reader"
      description     = "FinanceLake read-only lake access (marketdata and stream servers)"
      policy          = data.aws_iam_policy_document.lake_reader.json
    }
    lake-writer = {
      service_account = "financelake-lake-writer"
      description     = "FinanceLake lake writes (Faust workers, prediction log, lake compact and expire-snapshots)"
      policy          = data.aws_iam_policy_document.lake_writer.json
    }
    trainer = {
      service_account = "financelake-trainer"
      description     = "FinanceLake model training (reads the lake, writes the model registry)"
      policy          = data.aws_iam_policy_document.trainer.json
    }
  }
}

# --- Trust: one service account of one namespace per role, through the cluster's OIDC provider. ---

data "aws_iam_policy_document" "assume" {
  for_each = local.roles

  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [var.oidc_provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${var.oidc_issuer}:sub"
      values   = ["system:serviceaccount:${var.namespace}:${each.value.service_account}"]
    }

    condition {
      test     = "StringEquals"
      variable = "${var.oidc_issuer}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

# --- Permissions. Every statement names its resources: Glue and S3 object actions take
# catalog/database/table and object ARNs, so no statement needs "*". ---

data "aws_iam_policy_document" "lake_reader" {
  statement {
    sid       = "ListLakePrefixes"
    actions   = ["s3:ListBucket"]
    resources = [var.bucket_arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["warehouse", "warehouse/*", "models", "models/*"]
    }
  }

  statement {
    sid       = "ReadLakeObjects"
    actions   = ["s3:GetObject"]
    resources = [local.warehouse_objects, local.models_objects]
  }

  statement {
    sid = "ReadGlueCatalog"
    actions = [
      "glue:GetDatabase",
      "glue:GetDatabases",
      "glue:GetTable",
      "glue:GetTables",
      "glue:GetPartitions",
    ]
    resources = concat([local.glue_catalog_arn], local.glue_database_arns, local.glue_table_arns)
  }

  # Objects (bucket key) and the catalog's metadata are encrypted with the same key.
  statement {
    sid       = "DecryptLake"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }
}

data "aws_iam_policy_document" "lake_writer" {
  source_policy_documents = [data.aws_iam_policy_document.lake_reader.json]

  statement {
    sid = "WriteWarehouseObjects"
    actions = [
      "s3:PutObject",
      "s3:DeleteObject",
      "s3:AbortMultipartUpload",
    ]
    resources = [local.warehouse_objects]
  }

  statement {
    sid = "WriteGlueTables"
    actions = [
      "glue:CreateTable",
      "glue:UpdateTable",
      "glue:DeleteTable",
    ]
    resources = concat([local.glue_catalog_arn], local.glue_database_arns, local.glue_table_arns)
  }

  # On the first start ensure_tables creates the missing tables, and their namespace if it
  # must (Glue answers AlreadyExists for these). Limited to the existing databases.
  statement {
    sid       = "EnsureGlueDatabases"
    actions   = ["glue:CreateDatabase"]
    resources = concat([local.glue_catalog_arn], local.glue_database_arns)
  }

  statement {
    sid       = "EncryptLake"
    actions   = ["kms:GenerateDataKey"]
    resources = [var.kms_key_arn]
  }
}

data "aws_iam_policy_document" "trainer" {
  source_policy_documents = [data.aws_iam_policy_document.lake_reader.json]

  statement {
    sid = "WriteModelRegistry"
    actions = [
      "s3:PutObject",
      "s3:DeleteObject",
      "s3:AbortMultipartUpload",
    ]
    resources = [local.models_objects]
  }

  statement {
    sid       = "EncryptModels"
    actions   = ["kms:GenerateDataKey"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role" "this" {
  for_each = local.roles

  name               = "${var.name}-${each.key}"
  description        = each.value.description
  assume_role_policy = data.aws_iam_policy_document.assume[each.key].json

  tags = merge(var.tags, { ServiceAccount = "${var.namespace}/${each.value.service_account}" })
}

resource "aws_iam_role_policy" "this" {
  for_each = local.roles

  name   = "lake-access"
  role   = aws_iam_role.this[each.key].id
  policy = each.value.policy
}
