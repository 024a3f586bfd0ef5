"""Benchmarks that print figures (not pass/fail tests). `lobterm bench` runs them.

`lob_mix_v1.py` is a verbatim copy of the project's shared workload generator (shared/bench), kept in
the package so that `lobterm bench` works from an installed copy; `workload()` checks its identity
against the reference sha256 before any figure is printed.
"""
