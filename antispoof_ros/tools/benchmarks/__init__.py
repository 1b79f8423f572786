"""Benchmarks that print the package's performance figures (docs/performance.md)."""
