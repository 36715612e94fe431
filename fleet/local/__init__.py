"""Local servers for `fleet up`, the demo, the tests and the benchmarks."""
