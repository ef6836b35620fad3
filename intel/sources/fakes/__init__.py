"""Fake servers of the external APIs, on 127.0.0.1, for tests and benchmarks (never used live)."""
