provider "aws" {
  region = var.region

  default_tags {
    tags = local.default_tags
  }
}

data "aws_caller_identity" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id

  default_tags = merge({
    Project     = "financelake"
    Environment = var.environment
    ManagedBy   = "terraform"
  }, var.tags)

  # Bucket names are global: the account ID keeps the default unique.
  warehouse_bucket_name = coalesce(var.warehouse_bucket_name, "${var.name}-warehouse-${local.account_id}")
}

module "vpc" {
  source = "../../modules/vpc"

  name                       = var.name
  cidr_block                 = var.vpc_cidr
  azs                        = var.azs
  single_nat_gateway         = var.single_nat_gateway
  enable_interface_endpoints = var.enable_interface_endpoints

  tags = { Component = "network" }
}

module "eks" {
  source = "../../modules/eks"

  name                         = var.name
  kubernetes_version           = var.kubernetes_version
  subnet_ids                   = module.vpc.private_subnet_ids
  endpoint_public_access       = var.cluster_endpoint_public_access
  endpoint_public_access_cidrs = var.cluster_endpoint_public_access_cidrs
  admin_principal_arn          = var.admin_principal_arn

  node_instance_types = var.node_instance_types
  node_ami_type       = var.node_ami_type
  node_min_size       = var.node_min_size
  node_max_size       = var.node_max_size
  node_desired_size   = var.node_desired_size

  tags = { Component = "kubernetes" }
}

module "msk" {
  source = "../../modules/msk"

  name                      = var.name
  vpc_id                    = module.vpc.vpc_id
  subnet_ids                = module.vpc.private_subnet_ids
  client_security_group_ids = [module.eks.node_security_group_id]
  kafka_version             = var.kafka_version
  instance_type             = var.kafka_instance_type
  broker_volume_size        = var.kafka_broker_volume_size
  enhanced_monitoring       = var.kafka_enhanced_monitoring

  tags = { Component = "kafka" }
}

module "s3_warehouse" {
  source = "../../modules/s3-warehouse"

  name        = var.name
  bucket_name = local.warehouse_bucket_name

  tags = { Component = "lake" }
}

module "glue_catalog" {
  source = "../../modules/glue-catalog"

  name                      = var.name
  warehouse_uri             = module.s3_warehouse.warehouse_uri
  kms_key_arn               = module.s3_warehouse.kms_key_arn
  manage_catalog_encryption = var.manage_glue_catalog_encryption

  tags = { Component = "lake" }
}

module "iam_irsa" {
  source = "../../modules/iam-irsa"

  name                = var.name
  oidc_provider_arn   = module.eks.oidc_provider_arn
  oidc_issuer         = module.eks.oidc_issuer
  namespace           = var.kubernetes_namespace
  bucket_arn          = module.s3_warehouse.bucket_arn
  kms_key_arn         = module.s3_warehouse.kms_key_arn
  glue_database_names = module.glue_catalog.database_names
  region              = var.region
  account_id          = local.account_id

  tags = { Component = "lake" }
}

module "ecr" {
  source = "../../modules/ecr"

  name = var.ecr_repository_name

  tags = { Component = "build" }
}
