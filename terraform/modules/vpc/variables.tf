variable "name" {
  type        = string
  description = "Name prefix for every resource of the module, e.g. financelake-prod."
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource of the module, on top of the provider's default_tags."
  default     = {}
}

variable "cidr_block" {
  type        = string
  description = "IPv4 CIDR of the VPC (/16 to /18). Each private subnet gets an eighth of it (pod IPs come from them with the VPC CNI), each public subnet a 256th from its upper half."
  default     = "10.0.0.0/16"

  validation {
    condition     = can(cidrnetmask(var.cidr_block)) && contains(["16", "17", "18"], try(split("/", var.cidr_block)[1], ""))
    error_message = "cidr_block must be a valid IPv4 CIDR of /16 to /18."
  }
}

variable "azs" {
  type        = list(string)
  description = "Availability zones, named explicitly so that the subnets never move (each gets one private and one public subnet). MSK's replication factor of 3 needs 3."

  validation {
    condition     = length(var.azs) >= 2 && length(var.azs) <= 4 && length(distinct(var.azs)) == length(var.azs)
    error_message = "azs must list 2 to 4 distinct availability zones."
  }
}

variable "single_nat_gateway" {
  type        = bool
  description = "One NAT gateway for all private subnets (cheaper, one AZ's NAT is a single point of failure) instead of one per AZ."
  default     = false
}

variable "enable_interface_endpoints" {
  type        = bool
  description = "Create interface endpoints for sts, glue, ecr.api, ecr.dkr and logs, so that IRSA, the Glue catalog, image pulls and logs stay off the NAT gateways."
  default     = false
}

variable "flow_log_retention_days" {
  type        = number
  description = "Retention of the VPC flow log group, in days (at least a year)."
  default     = 365
}
