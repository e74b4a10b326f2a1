"""The benchmark harness (`make bench`, `python -m benchmarks`): it drives the sandbox and the
production runners and writes docs/benchmarks.md. Benchmarks may import the sandbox; the
production packages never import this one."""
