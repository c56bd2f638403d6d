# --- KMS key: data at rest on the brokers' volumes, and the broker log group. MSK uses the
# key through a grant it creates with the caller's (Terraform's) rights. ---

module "logs" {
  source = "../encrypted-log-group"

  name            = "${var.name}-msk"
  key_description = "${var.name} MSK data at rest and broker logs"
  log_group_name  = "/aws/msk/${var.name}"
  retention_days  = var.log_retention_days
  tags            = var.tags
}

# --- Network: only the TLS listener, only from the client security groups (and the
# exporters, only from Prometheus, when prometheus_security_group_ids is set). ---

resource "aws_security_group" "this" {
  name        = "${var.name}-msk"
  description = "MSK brokers: Kafka over TLS (9094) from the client security groups only"
  vpc_id      = var.vpc_id

  ingress {
    description     = "Kafka TLS listener from the clients (EKS nodes)"
    from_port       = 9094
    to_port         = 9094
    protocol        = "tcp"
    security_groups = var.client_security_group_ids
  }

  dynamic "ingress" {
    for_each = length(var.prometheus_security_group_ids) > 0 ? [1] : []

    content {
      description     = "Prometheus JMX (11001) and node (11002) exporters"
      from_port       = 11001
      to_port         = 11002
      protocol        = "tcp"
      security_groups = var.prometheus_security_group_ids
    }
  }

  tags = merge(var.tags, { Name = "${var.name}-msk" })
}

# --- Cluster ---

resource "aws_msk_configuration" "this" {
  name           = "${var.name}-config"
  description    = "Broker settings of ${var.name}: topics are created explicitly, writes survive one broker down"
  kafka_versions = [var.kafka_version]

  server_properties = <<-EOT
    auto.create.topics.enable=false
    default.replication.factor=3
    min.insync.replicas=2
    unclean.leader.election.enable=false
  EOT
}

resource "aws_msk_cluster" "this" {
  cluster_name           = var.name
  kafka_version          = var.kafka_version
  number_of_broker_nodes = length(var.subnet_ids)
  enhanced_monitoring    = var.enhanced_monitoring

  broker_node_group_info {
    instance_type   = var.instance_type
    client_subnets  = var.subnet_ids
    security_groups = [aws_security_group.this.id]

    storage_info {
      ebs_storage_info {
        volume_size = var.broker_volume_size
      }
    }

    connectivity_info {
      public_access {
        type = "DISABLED"
      }
    }
  }

  configuration_info {
    arn      = aws_msk_configuration.this.arn
    revision = aws_msk_configuration.this.latest_revision
  }

  # TLS transport without client authentication: the app's Kafka clients speak SSL without
  # SASL today, so access is restricted by the security group above. IAM (SASL) client
  # authentication is the planned next step.
  client_authentication {
    unauthenticated = true
  }

  encryption_info {
    encryption_at_rest_kms_key_arn = module.logs.key_arn

    encryption_in_transit {
      client_broker = "TLS"
      in_cluster    = true
    }
  }

  logging_info {
    broker_logs {
      cloudwatch_logs {
        enabled   = true
        log_group = module.logs.log_group_name
      }
    }
  }

  # For a Prometheus scraping the JMX (11001) and node (11002) exporters: see
  # prometheus_security_group_ids.
  open_monitoring {
    prometheus {
      jmx_exporter {
        enabled_in_broker = true
      }

      node_exporter {
        enabled_in_broker = true
      }
    }
  }

  tags = var.tags
}
