"""FinanceLake's gRPC servers, the plumbing they share, settings and the command line."""
