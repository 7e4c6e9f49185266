"""What a layer's state holds: the test accuracy of a linear probe read from it.

A linear (ridge least-squares) probe from features to one-hot labels, fitted on a training split
and scored on a test split: how much of the label a frozen representation carries linearly
(Alain & Bengio 2016, "Understanding intermediate layers using linear classifier probes").
"""

from __future__ import annotations

import numpy as np
import torch
from numpy.typing import ArrayLike

from rnnode._validate import check_int, check_nonnegative

__all__ = ["linear_probe_accuracy", "linear_probe_correct"]


def _as_array(name: str, value: ArrayLike, dims: int) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    array = np.asarray(value)
    if array.ndim != dims:
        raise ValueError(f"{name}: expected {dims} dimension(s), got shape {array.shape}")
    return array


def linear_probe_accuracy(
    train_features: ArrayLike,
    train_labels: ArrayLike,
    test_features: ArrayLike,
    test_labels: ArrayLike,
    classes: int,
    *,
    ridge: float = 1e-3,
) -> torch.Tensor:
    """Test accuracy of a linear probe: ridge least squares from features to one-hot labels.

    Features are standardised with the training split's mean and standard deviation (a constant
    feature is left centred), a constant 1 is appended, and W = (X^T X + ridge n I)^-1 X^T Y
    (the constant unpenalised) with Y the one-hot labels; the prediction is argmax_k (x W)_k.

    Arguments:
        train_features, test_features: (n, F) and (m, F).
        train_labels, test_labels: (n,) and (m,) class indices in 0..classes-1.
        classes: number of classes.
        ridge: penalty per training example (>= 0; 0: least squares).

    Returns:
        A 0-d float64 tensor: the fraction of test examples classified correctly (the mean of
        ``linear_probe_correct``).
    """
    correct = linear_probe_correct(
        train_features, train_labels, test_features, test_labels, classes, ridge=ridge
    )
    return torch.tensor(float(correct.double().mean()), dtype=torch.float64)


def linear_probe_correct(
    train_features: ArrayLike,
    train_labels: ArrayLike,
    test_features: ArrayLike,
    test_labels: ArrayLike,
    classes: int,
    *,
    ridge: float = 1e-3,
) -> torch.Tensor:
    """Which test examples the probe of ``linear_probe_accuracy`` classifies correctly: per-item
    scores, for statistics that treat the test items as a sample (seeds x items).

    Arguments: as ``linear_probe_accuracy``.

    Returns:
        (m,) bool tensor, True where argmax_k (x W)_k is the test label.
    """
    a = _as_array("train_features", train_features, 2).astype(np.float64)
    b = _as_array("test_features", test_features, 2).astype(np.float64)
    y_train = _as_array("train_labels", train_labels, 1)
    y_test = _as_array("test_labels", test_labels, 1)
    if len(y_train) != len(a) or len(y_test) != len(b) or a.shape[1] != b.shape[1]:
        raise ValueError(
            f"test_features: expected (n, F) and (m, F) features with n and m labels, got "
            f"{a.shape}, {b.shape}, {len(y_train)} and {len(y_test)} labels"
        )
    classes = check_int("classes", classes, minimum=1)
    ridge = check_nonnegative("ridge", ridge)
    mean, std = a.mean(axis=0), a.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    a, b = (a - mean) / std, (b - mean) / std
    a = np.hstack([a, np.ones((len(a), 1))])
    b = np.hstack([b, np.ones((len(b), 1))])
    targets = np.eye(classes)[y_train]
    penalty = ridge * len(a) * np.eye(a.shape[1])
    penalty[-1, -1] = 0.0
    weights = np.linalg.solve(a.T @ a + penalty, a.T @ targets)
    return torch.as_tensor((b @ weights).argmax(axis=1) == y_test)
