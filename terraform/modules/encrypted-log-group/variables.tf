variable "name" {
  type        = string
  description = "Name of the KMS key (its alias is alias/<name>)."
}

variable "key_description" {
  type        = string
  description = "What the KMS key encrypts, shown in the KMS console."
}

variable "log_group_name" {
  type        = string
  description = "Name of the CloudWatch log group, e.g. /aws/eks/<cluster>/cluster."
}

variable "retention_days" {
  type        = number
  description = "Retention of the log group, in days (at least a year)."
  default     = 365

  validation {
    condition     = contains([365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.retention_days)
    error_message = "retention_days must be a CloudWatch Logs retention value of at least 365."
  }
}

variable "tags" {
  type        = map(string)
  description = "Tags added to the key and the log group."
  default     = {}
}
