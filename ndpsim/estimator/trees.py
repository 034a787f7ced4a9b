"""Fitted gradient-boosted trees as plain arrays: export from scikit-learn, save without
pickle, predict with a numba kernel.

A fitted `HistGradientBoostingRegressor` is a baseline plus a sum of binary trees whose
nodes are (feature, threshold, left, right, leaf, value) records. Those arrays are all a
prediction needs, so they are saved in an `.npz` (loaded with `allow_pickle=False`: no code
runs on load) and evaluated here; scikit-learn is needed to train, not to predict.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numba import njit


@dataclass(frozen=True)
class Forest:
    """All trees of one regressor, nodes concatenated; `roots[t]` is tree t's first node."""

    baseline: float
    feature: np.ndarray  # int64 per node
    threshold: np.ndarray  # float64: go left when x <= threshold
    left: np.ndarray  # int64, absolute node index
    right: np.ndarray
    missing_left: np.ndarray  # uint8: NaN goes left
    is_leaf: np.ndarray  # uint8
    value: np.ndarray  # float64 leaf values (learning rate already applied by sklearn)
    roots: np.ndarray  # int64
    _packed: np.ndarray | None = field(default=None, repr=False, compare=False)

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        out = {f"{prefix}.{k}": getattr(self, k) for k in _ARRAYS}
        out[f"{prefix}.baseline"] = np.array([self.baseline])
        return out

    @classmethod
    def from_arrays(cls, data, prefix: str) -> Forest:
        return cls(
            float(data[f"{prefix}.baseline"][0]),
            *(np.asarray(data[f"{prefix}.{k}"]) for k in _ARRAYS),
        )

    def predict(self, X: np.ndarray) -> np.ndarray:
        if self._packed is None:  # one row of 4 float64 per node: one cache line per visit
            leaf = self.is_leaf.astype(bool)
            packed = np.stack(
                [
                    np.where(leaf, self.value, self.threshold),
                    np.where(leaf, -1, self.feature).astype(np.float64),
                    self.left.astype(np.float64),
                    self.right.astype(np.float64),
                ],
                axis=1,
            )
            object.__setattr__(self, "_packed", np.ascontiguousarray(packed))
        return _predict(
            np.ascontiguousarray(X, dtype=np.float64),
            self.baseline,
            self._packed,
            self.missing_left,
            self.roots,
        )


_ARRAYS = ("feature", "threshold", "left", "right", "missing_left", "is_leaf", "value", "roots")


def export_hgb(model) -> Forest:
    """The trees of a fitted single-output HistGradientBoostingRegressor (numerical features)."""
    preds = [p[0] for p in model._predictors]
    if any(np.any(p.nodes["is_categorical"]) for p in preds):
        raise ValueError("categorical splits are not exported")
    sizes = [len(p.nodes) for p in preds]
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    nodes = [p.nodes for p in preds]
    cat = lambda field, dt: np.concatenate([n[field].astype(dt) for n in nodes])  # noqa: E731
    left = np.concatenate(
        [n["left"].astype(np.int64) + o for n, o in zip(nodes, offsets, strict=True)]
    )
    right = np.concatenate(
        [n["right"].astype(np.int64) + o for n, o in zip(nodes, offsets, strict=True)]
    )
    return Forest(
        float(np.asarray(model._baseline_prediction).ravel()[0]),
        cat("feature_idx", np.int64),
        cat("num_threshold", np.float64),
        left,
        right,
        cat("missing_go_to_left", np.uint8),
        cat("is_leaf", np.uint8),
        cat("value", np.float64),
        offsets,
    )


@njit(cache=True)
def _predict(X, baseline, nodes, missing_left, roots):
    n = X.shape[0]
    out = np.full(n, baseline)
    for i in range(n):
        acc = 0.0
        for t in range(roots.shape[0]):
            node = roots[t]
            f = int(nodes[node, 1])
            while f >= 0:
                x = X[i, f]
                if x != x:
                    node = int(nodes[node, 2]) if missing_left[node] else int(nodes[node, 3])
                elif x <= nodes[node, 0]:
                    node = int(nodes[node, 2])
                else:
                    node = int(nodes[node, 3])
                f = int(nodes[node, 1])
            acc += nodes[node, 0]
        out[i] += acc
    return out
