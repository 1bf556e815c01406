"""Discrete Neural Flow Samplers."""
