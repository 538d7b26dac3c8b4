"""EVALUATE's metrics against values worked out by hand, and the confusion-matrix picture."""

import warnings

import numpy as np
import pytest

from thanosql_assets.models.classifiers.metrics import classification_metrics
from thanosql_assets.models.pictures import confusion_matrix_figure


def binary(positive: list[float]) -> np.ndarray:
    positive = np.array(positive)
    return np.stack([1 - positive, positive], axis=1)


def test_two_classes_give_thanosqls_binary_metrics():
    # predictions 0 1 0 1 1 against 0 1 1 0 1: TP 2, FN 1, FP 1, TN 1
    values = classification_metrics(np.array([0, 1, 1, 0, 1]), binary([0.2, 0.9, 0.4, 0.6, 0.8]))
    assert list(values) == ["accuracy", "ROCAUC", "Recall", "Precision", "f1-score", "Kappa", "MCC"]
    assert values == pytest.approx({
        "accuracy": 3 / 5,
        "ROCAUC": 5 / 6,  # 5 of the 6 (positive, negative) pairs ranked right: only 0.4 < 0.6 is not
        "Recall": 2 / 3,
        "Precision": 2 / 3,
        "f1-score": 2 / 3,
        "Kappa": (0.6 - 0.52) / (1 - 0.52),  # chance agreement 3/5 * 3/5 + 2/5 * 2/5
        "MCC": (2 * 1 - 1 * 1) / np.sqrt(3 * 3 * 2 * 2),
    })


def test_more_classes_give_accuracy_and_macro_averages():
    targets = np.array([0, 0, 1, 1, 2, 2])
    probabilities = np.eye(3)[[0, 1, 1, 1, 2, 0]] * 0.8 + 0.2 / 3
    values = classification_metrics(targets, probabilities)
    assert list(values) == ["Accuracy", "macro-Recall", "macro-Precision", "macro-f1-score"]
    assert values == pytest.approx({
        "Accuracy": 4 / 6,
        "macro-Recall": (1 / 2 + 2 / 2 + 1 / 2) / 3,
        "macro-Precision": (1 / 2 + 2 / 3 + 1 / 1) / 3,
        "macro-f1-score": (1 / 2 + 4 / 5 + 2 / 3) / 3,  # 2TP / (2TP + FP + FN) per class
    })


def test_classes_absent_from_the_data_do_not_break_or_skew_the_metrics():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # Class 3 is neither a target nor predicted: it is left out of the macro averages.
        values = classification_metrics(np.array([0, 1, 2]), np.eye(4)[[0, 1, 2]])
        assert values == {"Accuracy": 1.0, "macro-Recall": 1.0, "macro-Precision": 1.0, "macro-f1-score": 1.0}
        # One class in the targets: no ROC curve, no chance-corrected agreement.
        values = classification_metrics(np.array([1, 1]), binary([0.9, 0.8]))
        assert np.isnan(values["ROCAUC"]) and np.isnan(values["Kappa"])
        assert (values["accuracy"], values["Recall"], values["Precision"], values["MCC"]) == (1.0, 1.0, 1.0, 0.0)
        # No positive prediction: precision 0, not an error.
        assert classification_metrics(np.array([0, 1]), binary([0.1, 0.2]))["Precision"] == 0.0
        # A class of the targets never predicted counts with precision 0, as recall counts it with 0:
        # predicting one class everywhere is not precise.
        values = classification_metrics(np.array([0, 1, 2, 2]), np.eye(3)[[2, 2, 2, 2]])
        assert values["macro-Precision"] == pytest.approx((0 + 0 + 2 / 4) / 3) and values["macro-Recall"] == pytest.approx(1 / 3)


def test_the_confusion_matrix_counts_each_pair():
    figure = confusion_matrix_figure([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 2, 0], ["cat", "dog", "bird"], "m on t")
    axes = figure.axes[0]
    assert [text.get_text() for text in axes.texts] == ["1", "1", "0", "0", "1", "0", "1", "0", "2"]
    assert [label.get_text() for label in axes.get_xticklabels()] == ["cat", "dog", "bird"]
    assert axes.get_title() == "m on t"
