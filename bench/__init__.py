"""Benchmarks of the dashboard against Bull Board (not tests): `make bench`, see bench/README.md."""
