output "role_arns" {
  description = "Map of Kubernetes service account name to the ARN of the IAM role it may assume (the eks.amazonaws.com/role-arn annotations)."
  value       = { for key, role in local.roles : role.service_account => aws_iam_role.this[key].arn }
}

output "lake_reader_role_arn" {
  description = "ARN of the lake-reader role (service account financelake-lake-reader)."
  value       = aws_iam_role.this["lake-reader"].arn
}

output "lake_writer_role_arn" {
  description = "ARN of the lake-writer role (service account financelake-lake-writer)."
  value       = aws_iam_role.this["lake-writer"].arn
}

output "trainer_role_arn" {
  description = "ARN of the trainer role (service account financelake-trainer)."
  value       = aws_iam_role.this["trainer"].arn
}
