"""What operators see of FinanceLake: each process's Prometheus metrics (`metrics`) and
OpenTelemetry traces (`tracing`)."""
