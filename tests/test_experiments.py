"""The text tables' arithmetic: the share of tokens a cut lets a model see, and the best deep model against the
baseline with each dataset's goal."""

from pathlib import Path

import numpy as np
import pandas as pd

from seqlab_tools.experiments import _token_counts, against_baseline, search_max_len, tokens_seen


def test_tokens_seen_is_the_share_of_real_test_tokens_within_the_cut():
    counts = _token_counts("drugs-condition", "word", "default")
    assert len(counts) == 136 and counts.min() >= 1
    assert tokens_seen("drugs-condition", "lstm", int(counts.max())) == 1.0
    assert tokens_seen("drugs-condition", "lstm", 10) == np.minimum(counts, 10).sum() / counts.sum() < 0.5
    assert tokens_seen("drugs-condition", "tfidf-linear", 1) == 1.0  # the n-gram baseline reads texts whole
    # WordPiece: [CLS] and [SEP] take two of max_len's places
    pieces = _token_counts("drugs-condition", "wordpiece", "default")
    assert tokens_seen("drugs-condition", "minilm", 66) == np.minimum(pieces, 64).sum() / pieces.sum()


def test_the_best_deep_model_is_held_to_its_datasets_goal():
    table = pd.DataFrame([
        {"dataset": "cfpb", "model": "tfidf-linear", "run": "b", "test macro-F1": 0.76},
        {"dataset": "cfpb", "model": "minilm", "run": "m", "test macro-F1": 0.79},
        {"dataset": "cfpb", "model": "lstm", "run": "l", "test macro-F1": 0.73},
        {"dataset": "sentences2", "model": "tfidf-linear", "run": "b2", "test macro-F1": 0.76},
        {"dataset": "sentences2", "model": "cnn", "run": "c2", "test macro-F1": 0.76},
        {"dataset": "drugs-rating", "model": "lstm", "run": "only-deep", "test macro-F1": 0.5},
    ])
    vs = against_baseline(table).set_index("dataset")
    assert list(vs.index) == ["cfpb", "sentences2"]  # a dataset without a baseline row has no comparison
    cfpb = vs.loc["cfpb"]
    assert (cfpb["best deep model"], cfpb["its run"], cfpb["goal"], cfpb["met"]) == ("minilm", "m", 0.8, "**no**")
    assert abs(cfpb["gap"] - 0.03) < 1e-9  # above the baseline by 0.03, yet under CFPB's floor of 0.80
    assert (vs.loc["sentences2", "goal"], vs.loc["sentences2", "met"]) == (0.76, "yes")  # at the baseline: met


def test_a_searchs_max_len_comes_from_its_flag_or_its_config():
    config = Path(__file__).parents[1] / "configs" / "cfpb_lstm_search.yaml"
    assert search_max_len(f"seqlab tune --config {config}") == 400  # the config's data.max_len
    assert search_max_len(f"seqlab tune --config {config} --max-len 64") == 64
    assert search_max_len("seqlab tune --dataset cfpb") == 400  # DataConfig's default
