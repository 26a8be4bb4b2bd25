import numpy as np
import pandas as pd
import pytest

from seqlab.report import markdown_table, plot_curves, tensorboard_history
from seqlab.tasks.generate import recognisability


def test_tensorboard_history_reads_back_every_epoch_and_a_resume_wins(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    w = SummaryWriter(tmp_path)
    for epoch, loss in [(1, 2.0), (2, 1.5)]:
        w.add_scalar("train/loss", loss, epoch)
        w.add_scalar("val/loss", loss + 0.1, epoch)
    w.close()
    w = SummaryWriter(tmp_path)  # a resumed run writes a second file, from epoch 2 on
    w.add_scalar("train/loss", 1.4, 2)
    w.add_scalar("train/loss", 1.2, 3)
    w.close()
    h = tensorboard_history(tmp_path)
    assert list(h.index) == [1, 2, 3]
    assert h.loc[1, "train/loss"] == 2.0 and h.loc[2, "train/loss"] == pytest.approx(1.4)
    assert h.loc[3, "train/loss"] == pytest.approx(1.2) and np.isnan(h.loc[3, "val/loss"])
    h["val/macro_f1"] = [0.1, 0.2, 0.3]
    plot_curves({"run": h}, tmp_path / "c.png", "val/macro_f1", "t")
    assert (tmp_path / "c.png").stat().st_size > 5000


def test_recognisability_counts_hits_per_category():
    class Fixed:
        labels = ["Acne", "Pain"]

        def probabilities(self, texts):
            return np.array([[1.0, 0.0] if "skin" in t else [0.0, 1.0] for t in texts])

    res = recognisability(Fixed(), {"Acne": ["my skin", "back hurts"], "Pain": ["back hurts", "knee"]})
    assert res["accuracy"] == 0.75 and res["correct"] == 3 and res["n"] == 4
    assert res["per_category"] == {"Acne": 0.5, "Pain": 1.0}


def test_markdown_table():
    md = markdown_table(pd.DataFrame({"a": ["x", "y"], "b": [0.12345, None]}))
    assert md.splitlines() == ["| a | b |", "|---|---|", "| x | 0.123 |", "| y | – |"]
