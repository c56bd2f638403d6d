output "database_names" {
  description = "Names of the Glue databases, in the order of var.namespaces."
  value       = [for ns in var.namespaces : aws_glue_catalog_database.this[ns].name]
}

output "databases" {
  description = "Map of Iceberg namespace to Glue database name."
  value       = { for ns, db in aws_glue_catalog_database.this : ns => db.name }
}

output "catalog_id" {
  description = "ID of the Glue Data Catalog holding the databases (the account ID)."
  value       = data.aws_caller_identity.current.account_id
}
