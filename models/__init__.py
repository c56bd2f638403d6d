"""Models trained on the lake: features from `gold.features`, scikit-learn pipelines validated
walk-forward, exported to ONNX and kept in a versioned registry."""
