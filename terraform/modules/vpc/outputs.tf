output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "vpc_cidr_block" {
  description = "IPv4 CIDR of the VPC."
  value       = aws_vpc.this.cidr_block
}

output "azs" {
  description = "Availability zones of the subnets, in subnet order."
  value       = var.azs
}

output "private_subnet_ids" {
  description = "IDs of the private subnets, one per AZ (EKS nodes, MSK brokers, interface endpoints)."
  value       = aws_subnet.private[*].id
}

output "public_subnet_ids" {
  description = "IDs of the public subnets, one per AZ (NAT gateways and internet-facing load balancers)."
  value       = aws_subnet.public[*].id
}

output "private_route_table_ids" {
  description = "IDs of the private route tables, one per AZ."
  value       = aws_route_table.private[*].id
}

output "nat_public_ips" {
  description = "Public IPs of the NAT gateways: the source addresses of the cluster's outbound traffic (for allowlists at data vendors)."
  value       = aws_eip.nat[*].public_ip
}

output "flow_log_group_name" {
  description = "CloudWatch log group holding the VPC flow logs."
  value       = module.flow_logs.log_group_name
}
