"""rnnode.analysis.probes: the linear probe on hand-made cases and against numpy's least squares."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnode.analysis import linear_probe_accuracy, linear_probe_correct


def test_probe_separates_separable_classes():
    rng = np.random.default_rng(0)
    centres = np.array([[5.0, 0.0], [0.0, 5.0], [-5.0, -5.0]])
    labels = rng.integers(0, 3, size=60)
    features = centres[labels] + 0.1 * rng.standard_normal((60, 2))
    accuracy = float(
        linear_probe_accuracy(features[:40], labels[:40], features[40:], labels[40:], classes=3)
    )
    assert accuracy == 1.0


def test_probe_without_information_predicts_the_majority_class():
    # A constant feature carries nothing: the fit is the bias, the mean one-hot label.
    train = np.ones((3, 1))
    accuracy = float(
        linear_probe_accuracy(
            train, np.array([0, 0, 1]), np.ones((4, 1)), np.array([0, 1, 1, 1]), classes=2
        )
    )
    assert accuracy == 0.25


def test_probe_without_ridge_is_least_squares():
    rng = np.random.default_rng(1)
    x, labels = rng.standard_normal((50, 4)), rng.integers(0, 3, size=50)
    test = rng.standard_normal((30, 4))
    test_labels = rng.integers(0, 3, size=30)
    # numpy's least squares on the same standardised features and a constant column.
    mean, std = x.mean(axis=0), x.std(axis=0)
    design = np.hstack([(x - mean) / std, np.ones((50, 1))])
    weights = np.linalg.lstsq(design, np.eye(3)[labels], rcond=None)[0]
    predicted = (np.hstack([(test - mean) / std, np.ones((30, 1))]) @ weights).argmax(axis=1)
    expected = float((predicted == test_labels).mean())
    assert float(linear_probe_accuracy(x, labels, test, test_labels, 3, ridge=0.0)) == expected
    correct = linear_probe_correct(x, labels, test, test_labels, 3, ridge=0.0)
    assert correct.dtype == torch.bool and correct.shape == (30,)
    np.testing.assert_array_equal(correct.numpy(), predicted == test_labels)


def test_probe_returns_a_0d_tensor_and_names_bad_arguments():
    x, labels = np.eye(3), np.array([0, 1, 2])
    accuracy = linear_probe_accuracy(torch.eye(3), torch.tensor([0, 1, 2]), x, labels, 3)
    assert isinstance(accuracy, torch.Tensor) and accuracy.dim() == 0
    with pytest.raises(ValueError, match="train_features: expected 2 dimension"):
        linear_probe_accuracy(np.ones(3), labels, x, labels, 3)
    with pytest.raises(ValueError, match="test_features: expected"):
        linear_probe_accuracy(x, labels[:2], x, labels, 3)
    with pytest.raises(ValueError, match="ridge"):
        linear_probe_accuracy(x, labels, x, labels, 3, ridge=-1.0)
