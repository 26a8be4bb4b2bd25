"""Classification metrics from a confusion matrix (rows: true class, columns: predicted)."""

from __future__ import annotations

import numpy as np


def confusion(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    return np.bincount(y_true * num_classes + y_pred, minlength=num_classes**2).reshape(num_classes, num_classes)


def from_confusion(cm: np.ndarray) -> dict[str, float]:
    """Accuracy and macro precision, recall and F1; a class absent from both truth and predictions
    is left out of the means (a class never predicted has precision 0, as in scikit-learn)."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    support, predicted = cm.sum(1), cm.sum(0)
    denom = support + predicted
    present = denom > 0
    f1 = np.where(present, 2 * tp / np.maximum(denom, 1), 0.0)

    def mean(x):
        return float(x[present].mean()) if present.any() else 0.0

    return {
        "accuracy": float(tp.sum() / max(cm.sum(), 1)),
        "macro_f1": mean(f1),
        "macro_precision": mean(tp / np.maximum(predicted, 1)),
        "macro_recall": mean(tp / np.maximum(support, 1)),
    }


def per_class(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 and support of each class."""
    cm = np.asarray(cm, dtype=np.float64)
    tp, support, predicted = np.diag(cm), cm.sum(1), cm.sum(0)
    return {"precision": tp / np.maximum(predicted, 1), "recall": tp / np.maximum(support, 1),
            "f1": per_class_f1(cm), "support": support}


def per_class_f1(cm: np.ndarray) -> np.ndarray:
    cm = np.asarray(cm, dtype=np.float64)
    return 2 * np.diag(cm) / np.maximum(cm.sum(0) + cm.sum(1), 1)
