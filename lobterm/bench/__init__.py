"""Benchmarks that print figures (not pass/fail tests): the one home of benchmark code.

`lobterm bench [engine|l2|ui|record|backtest|all]` runs them through `report.py` (one table, each figure
beside its goal). Each benchmark module has `run() -> dict` and `main(argv)`, which the thin scripts in
the checkout's `benchmarks/` call (`python benchmarks/l2_bench.py --json`): no benchmark code lives in
`benchmarks/`.

`lob_mix_v1.py` is a verbatim copy of the project's shared workload generator (shared/bench), kept in
the package so that `lobterm bench` works from an installed copy; `workload()` checks its identity
against the reference sha256 before any figure is printed.
"""
