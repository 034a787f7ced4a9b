"""The NAS latency / energy estimator: kernels measured on the simulator, one regressor per
kernel type, a model-level sum (docs/estimator.md)."""
