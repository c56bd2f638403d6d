"""The stream gRPC server: pipeline status, lake tables and alerts."""
