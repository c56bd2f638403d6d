output "repository_url" {
  description = "URL of the repository (the chart's image.repository)."
  value       = aws_ecr_repository.this.repository_url
}

output "repository_arn" {
  description = "ARN of the repository (for CI push policies)."
  value       = aws_ecr_repository.this.arn
}
