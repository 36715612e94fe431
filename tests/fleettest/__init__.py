"""Test doubles and scripted clients shared by tests, benchmarks and `fleet demo`."""
