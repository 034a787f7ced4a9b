"""The NAS latency / energy estimator: the machine model evaluated without instructions (the
lowering's plan, timed and counted by the simulator's own core), corrected per kernel type by
regressors of the residual (docs/estimator.md)."""
