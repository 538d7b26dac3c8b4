"""EVALUATE's metrics for classifiers, named and ordered as ThanoSQL reports them."""

from __future__ import annotations

import warnings

import numpy as np


def classification_metrics(targets: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    """Metrics of class probabilities (float N x K) against the true class indices (int N).

    Two classes (the second, index 1, is the positive one): accuracy, ROCAUC, Recall, Precision,
    f1-score, Kappa, MCC. More classes: Accuracy and the macro averages of recall, precision and
    f1 over the classes in the targets or the predictions (a class in neither is left out; one
    never predicted has precision 0, one not in the targets recall 0). A metric undefined for the
    data is NaN: ROCAUC when the targets hold one class, Kappa when targets and predictions are all
    one same class.
    """
    from sklearn import metrics

    targets = np.asarray(targets)
    probabilities = np.asarray(probabilities)
    classes = probabilities.shape[1]
    labels = list(range(classes))
    predictions = probabilities.argmax(axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # undefined cases come back as NaN or 0, as documented above
        if classes == 2:
            both_present = len(np.unique(targets)) == 2
            binary = {"labels": labels, "pos_label": 1, "average": "binary", "zero_division": 0.0}
            values = {
                "accuracy": metrics.accuracy_score(targets, predictions),
                "ROCAUC": metrics.roc_auc_score(targets, probabilities[:, 1]) if both_present else float("nan"),
                "Recall": metrics.recall_score(targets, predictions, **binary),
                "Precision": metrics.precision_score(targets, predictions, **binary),
                "f1-score": metrics.f1_score(targets, predictions, **binary),
                "Kappa": metrics.cohen_kappa_score(targets, predictions, labels=labels),
                "MCC": metrics.matthews_corrcoef(targets, predictions),
            }
        else:
            present = sorted(set(targets.tolist()) | set(predictions.tolist()))
            macro = {"labels": present, "average": "macro", "zero_division": 0.0}
            values = {
                "Accuracy": metrics.accuracy_score(targets, predictions),
                "macro-Recall": metrics.recall_score(targets, predictions, **macro),
                "macro-Precision": metrics.precision_score(targets, predictions, **macro),
                "macro-f1-score": metrics.f1_score(targets, predictions, **macro),
            }
    return {name: float(value) for name, value in values.items()}
