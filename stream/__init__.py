"""Kafka side of FinanceLake: the local broker launcher, topics, and (later) the Faust app."""
