output "region" {
  description = "AWS region of the environment."
  value       = var.region
}

output "vpc_id" {
  description = "ID of the VPC."
  value       = module.vpc.vpc_id
}

output "private_subnet_ids" {
  description = "IDs of the private subnets (nodes, brokers)."
  value       = module.vpc.private_subnet_ids
}

output "nat_public_ips" {
  description = "Public IPs the cluster's outbound traffic comes from (for market-data vendors' allowlists)."
  value       = module.vpc.nat_public_ips
}

output "cluster_name" {
  description = "Name of the EKS cluster."
  value       = module.eks.cluster_name
}

output "cluster_endpoint" {
  description = "URL of the Kubernetes API server."
  value       = module.eks.cluster_endpoint
}

output "cluster_certificate_authority_data" {
  description = "Base64-encoded CA certificate of the Kubernetes API server."
  value       = module.eks.cluster_certificate_authority_data
}

output "oidc_provider_arn" {
  description = "ARN of the cluster's IAM OIDC provider (IRSA)."
  value       = module.eks.oidc_provider_arn
}

output "oidc_issuer" {
  description = "OIDC issuer of the cluster, without https://."
  value       = module.eks.oidc_issuer
}

output "node_security_group_id" {
  description = "Security group of the EKS nodes (allowed into MSK)."
  value       = module.eks.node_security_group_id
}

output "kubeconfig_command" {
  description = "Command writing a kubeconfig entry for the cluster."
  value       = "aws eks update-kubeconfig --region ${var.region} --name ${module.eks.cluster_name}"
}

output "ecr_repository_url" {
  description = "URL of the image repository (chart: image.repository)."
  value       = module.ecr.repository_url
}

output "kafka_bootstrap_brokers_tls" {
  description = "MSK TLS bootstrap brokers (chart: kafkaBootstrap)."
  value       = module.msk.bootstrap_brokers_tls
}

output "msk_cluster_arn" {
  description = "ARN of the MSK cluster."
  value       = module.msk.cluster_arn
}

output "msk_security_group_id" {
  description = "Security group of the MSK brokers."
  value       = module.msk.security_group_id
}

output "warehouse_bucket_name" {
  description = "Name of the warehouse bucket."
  value       = module.s3_warehouse.bucket_name
}

output "warehouse_bucket_arn" {
  description = "ARN of the warehouse bucket."
  value       = module.s3_warehouse.bucket_arn
}

output "warehouse_kms_key_arn" {
  description = "ARN of the KMS key of the warehouse bucket and the Glue Data Catalog."
  value       = module.s3_warehouse.kms_key_arn
}

output "warehouse_uri" {
  description = "Iceberg warehouse location (chart: lake.catalogProperties.warehouse)."
  value       = module.s3_warehouse.warehouse_uri
}

output "models_uri" {
  description = "Model registry location (chart: models.registryUri)."
  value       = module.s3_warehouse.models_uri
}

output "glue_database_names" {
  description = "Glue databases of the Iceberg namespaces."
  value       = module.glue_catalog.database_names
}

output "glue_catalog_id" {
  description = "ID of the Glue Data Catalog (the account ID)."
  value       = module.glue_catalog.catalog_id
}

output "service_account_role_arns" {
  description = "Map of Kubernetes service account name to its IRSA role ARN."
  value       = module.iam_irsa.role_arns
}

output "helm_values" {
  description = "Values for charts/financelake on this environment: `terraform output -raw helm_values > values-aws.yaml`, then pass it after values-eks.yaml."
  value = yamlencode({
    image          = { repository = module.ecr.repository_url }
    kafkaBootstrap = module.msk.bootstrap_brokers_tls
    kafka          = { securityProtocol = "SSL" }
    lake = {
      catalogProperties = {
        type            = "glue"
        warehouse       = module.s3_warehouse.warehouse_uri
        "client.region" = var.region
      }
    }
    models = { registryUri = module.s3_warehouse.models_uri }
    networkPolicy = {
      kafkaCidrs = [var.vpc_cidr]
      kafkaPorts = [9094]
    }
    serviceAccounts = {
      roleArns = {
        lakeReader = module.iam_irsa.lake_reader_role_arn
        lakeWriter = module.iam_irsa.lake_writer_role_arn
        trainer    = module.iam_irsa.trainer_role_arn
      }
    }
  })
}
