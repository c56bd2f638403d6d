variable "environment" {
  type        = string
  description = "Name of the environment, in the Environment tag of every resource."
  default     = "prod"
}

variable "region" {
  type        = string
  description = "AWS region of the environment."
  default     = "eu-west-1"
}

variable "azs" {
  type        = list(string)
  description = "Three availability zones of the region (one broker, one NAT-capable public subnet and one private subnet each)."
  default     = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
}

variable "name" {
  type        = string
  description = "Name of the environment's resources (EKS and MSK clusters) and prefix of the others."
  default     = "financelake-prod"
}

variable "tags" {
  type        = map(string)
  description = "Extra tags for every resource, merged into the provider's default_tags (Project, Environment, ManagedBy)."
  default     = {}
}

variable "admin_principal_arn" {
  type        = string
  description = "IAM role or user ARN given cluster-admin on EKS through an access entry (e.g. the platform team's SSO role)."
}

variable "kubernetes_namespace" {
  type        = string
  description = "Namespace the FinanceLake chart is installed into (the IRSA trust policies name its service accounts)."
  default     = "financelake"
}

variable "vpc_cidr" {
  type        = string
  description = "IPv4 CIDR of the VPC (/16 to /18)."
  default     = "10.10.0.0/16"
}

variable "single_nat_gateway" {
  type        = bool
  description = "One NAT gateway for the whole VPC instead of one per AZ (prod: false, so one AZ's outage does not cut the others' egress)."
  default     = false
}

variable "enable_interface_endpoints" {
  type        = bool
  description = "Interface endpoints for sts, glue, ecr.api, ecr.dkr and logs (prod: on, so IRSA, catalog, image pulls and logs survive a NAT outage and avoid its charges)."
  default     = true
}

variable "kubernetes_version" {
  type        = string
  description = "Kubernetes version of the EKS cluster."
  default     = "1.33"
}

variable "cluster_endpoint_public_access" {
  type        = bool
  description = "Expose the Kubernetes API publicly (restricted to cluster_endpoint_public_access_cidrs); off, it is reachable only from the VPC."
  default     = false
}

variable "cluster_endpoint_public_access_cidrs" {
  type        = list(string)
  description = "CIDRs allowed to reach the public Kubernetes API endpoint, when it is on."
  default     = []
}

variable "node_instance_types" {
  type        = list(string)
  description = "Instance types of the node group (prod: m6i.xlarge, x86_64 like node_ami_type)."
  default     = ["m6i.xlarge"]
}

variable "node_ami_type" {
  type        = string
  description = "EKS AMI type of the nodes; AL2023_ARM_64_STANDARD for Graviton instance types (the image must then be built for arm64)."
  default     = "AL2023_x86_64_STANDARD"
}

variable "node_min_size" {
  type        = number
  description = "Minimum number of nodes."
  default     = 3
}

variable "node_max_size" {
  type        = number
  description = "Maximum number of nodes."
  default     = 6
}

variable "node_desired_size" {
  type        = number
  description = "Number of nodes at creation."
  default     = 3
}

variable "kafka_version" {
  type        = string
  description = "Apache Kafka version of the MSK cluster."
  default     = "3.9.x"
}

variable "kafka_instance_type" {
  type        = string
  description = "MSK broker instance type (prod: Graviton kafka.m7g.large, the production-recommended Standard size)."
  default     = "kafka.m7g.large"
}

variable "kafka_enhanced_monitoring" {
  type        = string
  description = "MSK CloudWatch metrics level. Consumer lag per partition, which the pipeline's alerts need."
  default     = "PER_TOPIC_PER_PARTITION"
}

variable "kafka_broker_volume_size" {
  type        = number
  description = "EBS storage per broker, in GiB (grows in place, never shrinks)."
  default     = 500
}

variable "warehouse_bucket_name" {
  type        = string
  description = "Name of the warehouse bucket. Null: <name>-warehouse-<account id>."
  default     = null
}

variable "manage_glue_catalog_encryption" {
  type        = bool
  description = "Own the account-wide Glue Data Catalog encryption settings in this state (turn off where another stack in the same account and region owns them)."
  default     = true
}

variable "ecr_repository_name" {
  type        = string
  description = "Name of the ECR repository of the app image."
  default     = "financelake"
}
