"""The ingestion gRPC server: trades and history in, Kafka out."""
