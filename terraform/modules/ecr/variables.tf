variable "name" {
  type        = string
  description = "Name of the ECR repository (and prefix of its KMS key alias)."
  default     = "financelake"
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource of the module, on top of the provider's default_tags."
  default     = {}
}

variable "keep_image_count" {
  type        = number
  description = "Number of most recent images kept; older ones are expired by the lifecycle policy."
  default     = 30

  validation {
    condition     = var.keep_image_count >= 1
    error_message = "keep_image_count must be at least 1."
  }
}
