import numpy as np
import pytest

from seqlab.tasks.metrics import confusion, from_confusion


def test_accuracy_and_macro_f1_by_hand():
    y = np.array([0, 0, 1, 1, 2])
    p = np.array([0, 1, 1, 1, 0])
    m = from_confusion(confusion(y, p, 3))
    assert m["accuracy"] == pytest.approx(3 / 5)
    # F1: class0 = 2*1/(2+2)=0.5, class1 = 2*2/(2+3)=0.8, class2 = 0
    assert m["macro_f1"] == pytest.approx((0.5 + 0.8 + 0.0) / 3)


def test_absent_class_is_left_out():
    m = from_confusion(confusion(np.array([0, 1]), np.array([0, 1]), 4))
    assert m == {"accuracy": 1.0, "macro_f1": 1.0, "macro_precision": 1.0, "macro_recall": 1.0}


def test_macro_precision_and_recall_by_hand():
    y = np.array([0, 0, 1, 1, 2])
    p = np.array([0, 1, 1, 1, 0])
    m = from_confusion(confusion(y, p, 3))
    # precision: class0 1/2, class1 2/3, class2 never predicted -> 0; recall: 1/2, 2/2, 0/1
    assert m["macro_precision"] == pytest.approx((0.5 + 2 / 3 + 0) / 3)
    assert m["macro_recall"] == pytest.approx((0.5 + 1 + 0) / 3)
