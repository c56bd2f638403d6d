output "bucket_name" {
  description = "Name of the warehouse bucket."
  value       = aws_s3_bucket.this.id
}

output "bucket_arn" {
  description = "ARN of the warehouse bucket."
  value       = aws_s3_bucket.this.arn
}

output "kms_key_arn" {
  description = "ARN of the KMS key encrypting the warehouse bucket."
  value       = aws_kms_key.this.arn
}

output "warehouse_uri" {
  description = "Iceberg warehouse location (pyiceberg's `warehouse` catalog property)."
  value       = "s3://${aws_s3_bucket.this.id}/warehouse"
}

output "models_uri" {
  description = "Model registry location (the chart's models.registryUri)."
  value       = "s3://${aws_s3_bucket.this.id}/models"
}

output "log_bucket_name" {
  description = "Name of the bucket holding the warehouse bucket's server access logs."
  value       = aws_s3_bucket.logs.id
}
