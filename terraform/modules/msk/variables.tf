variable "name" {
  type        = string
  description = "Name of the MSK cluster, and prefix of every other resource of the module."
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource of the module, on top of the provider's default_tags."
  default     = {}
}

variable "vpc_id" {
  type        = string
  description = "VPC of the brokers' security group."
}

variable "subnet_ids" {
  type        = list(string)
  description = "Private subnets in three distinct AZs; one broker goes into each."

  # default.replication.factor=3 and min.insync.replicas=2 need three brokers; MSK takes two
  # or three client subnets.
  validation {
    condition     = length(var.subnet_ids) == 3
    error_message = "MSK needs exactly three subnets (one broker per AZ, replication factor 3)."
  }
}

variable "client_security_group_ids" {
  type        = list(string)
  description = "Security groups allowed to reach the brokers' TLS listener (9094), e.g. the EKS node security group."

  validation {
    condition     = length(var.client_security_group_ids) > 0
    error_message = "List at least one client security group."
  }
}

variable "kafka_version" {
  type        = string
  description = "Apache Kafka version of the cluster and its configuration."
  default     = "3.9.x"
}

variable "instance_type" {
  type        = string
  description = "Broker instance type, e.g. kafka.t3.small (development), kafka.m7g.large."
  default     = "kafka.m7g.large"
}

variable "enhanced_monitoring" {
  type        = string
  description = "CloudWatch metrics level: DEFAULT, PER_BROKER, PER_TOPIC_PER_BROKER or PER_TOPIC_PER_PARTITION (consumer lag per partition; what the pipeline's alerts need)."
  default     = "PER_TOPIC_PER_PARTITION"

  validation {
    condition     = contains(["DEFAULT", "PER_BROKER", "PER_TOPIC_PER_BROKER", "PER_TOPIC_PER_PARTITION"], var.enhanced_monitoring)
    error_message = "enhanced_monitoring must be DEFAULT, PER_BROKER, PER_TOPIC_PER_BROKER or PER_TOPIC_PER_PARTITION."
  }
}

variable "broker_volume_size" {
  type        = number
  description = "EBS storage per broker, in GiB (can be increased later, never decreased)."
  default     = 100
}

variable "log_retention_days" {
  type        = number
  description = "Retention of the broker log group, in days (at least a year)."
  default     = 365
}

variable "prometheus_security_group_ids" {
  type        = list(string)
  description = "Security groups allowed to scrape the brokers' open-monitoring exporters (TCP 11001-11002). Empty: the exporters run but nothing can reach them."
  default     = []
}
