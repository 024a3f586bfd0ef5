"""Shared parts of the tests (imported as tests.helpers.NAME): no test module imports another."""
