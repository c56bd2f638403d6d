"""The prediction gRPC server: FinanceLake's PredictionService and Open Inference Protocol v2."""
