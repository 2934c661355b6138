"""idaw's tests (pytest). The shared helpers the tests and benchmarks import are in tests.support; no module imports a
test module (tests/test_*.py)."""
