"""Connections to the tools teams already use (MLflow)."""
