variable "name" {
  type        = string
  description = "Name of the EKS cluster, and prefix of every other resource of the module."
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource of the module, on top of the provider's default_tags."
  default     = {}
}

variable "kubernetes_version" {
  type        = string
  description = "Kubernetes minor version of the control plane and the managed node group."
  default     = "1.33"
}

variable "subnet_ids" {
  type        = list(string)
  description = "Private subnets (one per AZ) for the control plane's network interfaces and the nodes."

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "EKS needs subnets in at least two availability zones."
  }
}

variable "endpoint_public_access" {
  type        = bool
  description = "Expose the Kubernetes API on a public endpoint as well (restricted to endpoint_public_access_cidrs). Off: the API is reachable only from inside the VPC (VPN, bastion, CI runners in the VPC)."
  default     = false
}

variable "endpoint_public_access_cidrs" {
  type        = list(string)
  description = "CIDRs allowed to reach the public API endpoint when endpoint_public_access is true. Never 0.0.0.0/0."
  default     = []

  validation {
    condition     = !contains(var.endpoint_public_access_cidrs, "0.0.0.0/0")
    error_message = "Do not open the public API endpoint to 0.0.0.0/0; list the operators' CIDRs."
  }
}

variable "admin_principal_arn" {
  type        = string
  description = "ARN of the IAM role or user granted cluster-admin through an EKS access entry (e.g. the platform team's SSO role)."
}

variable "log_retention_days" {
  type        = number
  description = "Retention of the control-plane log group, in days (at least a year)."
  default     = 365
}

variable "node_instance_types" {
  type        = list(string)
  description = "EC2 instance types of the managed node group (they must match node_ami_type's architecture)."
  default     = ["m6i.large"]
}

variable "node_ami_type" {
  type        = string
  description = "EKS AMI type of the nodes, e.g. AL2023_x86_64_STANDARD or AL2023_ARM_64_STANDARD for Graviton instance types."
  default     = "AL2023_x86_64_STANDARD"
}

variable "node_capacity_type" {
  type        = string
  description = "ON_DEMAND or SPOT."
  default     = "ON_DEMAND"

  validation {
    condition     = contains(["ON_DEMAND", "SPOT"], var.node_capacity_type)
    error_message = "node_capacity_type must be ON_DEMAND or SPOT."
  }
}

variable "node_min_size" {
  type        = number
  description = "Minimum number of nodes."
  default     = 2
}

variable "node_max_size" {
  type        = number
  description = "Maximum number of nodes."
  default     = 4
}

variable "node_desired_size" {
  type        = number
  description = "Number of nodes at creation; later changes are left to a cluster autoscaler."
  default     = 2
}

variable "node_disk_size" {
  type        = number
  description = "Size of each node's encrypted gp3 root volume, in GiB (images and emptyDir volumes live there)."
  default     = 50
}
