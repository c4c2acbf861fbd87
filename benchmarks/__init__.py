"""Side-by-side benchmarks: `python -m benchmarks.run` (make bench) writes docs/benchmarks.md."""
