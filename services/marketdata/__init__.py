"""The market-data gRPC server: symbols, bars, quotes and indicators from the lake."""
