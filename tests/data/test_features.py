import numpy as np
import pytest
import spacy

from seqlab.data import features
from seqlab.data.features import FEATURE_NAMES, mention_features, spacy_pipeline, vader_lexicon
from seqlab.errors import SeqlabError

# Real resources: the vaderSentiment sdist and the en_core_web_md wheel, cached under $SEQLAB_HOME.


def one(text: str, mention: str, occurrence: int = 0) -> dict[str, float]:
    """The features of ``mention`` (its ``occurrence``-th appearance in ``text``) by name."""
    start = -1
    for _ in range(occurrence + 1):
        start = text.index(mention, start + 1)
    row = mention_features([text], [start], [start + len(mention)])[0]
    return dict(zip(FEATURE_NAMES, row.tolist()))


def test_vader_lexicon_values():
    lex = vader_lexicon()
    assert len(lex) == 7506
    assert lex["help"] == 1.7 and lex["pain"] == -2.3 and lex["bad"] == -2.5 and lex["rash"] == -1.7
    assert "not" not in lex and lex["no"] == -1.2
    assert lex[":D"] == 2.3  # keys keep the file's case
    assert lex["ok"] == 1.2  # listed as 1.6, then 1.2: the last wins, as in VADER's make_lex_dict


def test_spacy_pipeline_is_tagger_only_and_matches_installed_spacy():
    nlp = spacy_pipeline()
    assert nlp is spacy_pipeline()  # loaded once
    assert nlp.pipe_names == ["tok2vec", "tagger", "attribute_ruler"]
    assert nlp.meta["name"] == "core_web_md" and nlp.meta["version"] == "3.8.0"
    assert spacy.util.is_compatible_version(spacy.__version__, nlp.meta["spacy_version"])
    assert [t.pos_ for t in nlp("Aspirin quickly relieved the severe headache .")] == [
        "PROPN", "ADV", "VERB", "DET", "ADJ", "NOUN", "PUNCT"]


def test_feature_names_match_matrix():
    x = mention_features(["Aspirin caused a rash."], [17], [21])
    assert x.shape == (1, len(FEATURE_NAMES)) == (1, 19)
    assert x.dtype == np.float32
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)
    assert mention_features([], [], []).shape == (0, 19)


def test_pos_counts_leave_out_the_mention():
    f = one("Aspirin quickly relieved the severe headache .", "headache")
    assert (f["ctx_nouns"], f["ctx_verbs"], f["ctx_adverbs"], f["ctx_adjectives"]) == (1, 1, 1, 1)
    # the same sentence with "severe headache" as the mention: the adjective is no longer context
    f = one("Aspirin quickly relieved the severe headache .", "severe headache")
    assert (f["ctx_nouns"], f["ctx_verbs"], f["ctx_adverbs"], f["ctx_adjectives"]) == (1, 1, 1, 0)
    assert f["mention_tokens"] == 2


def test_negated_part_after_not():
    lex = vader_lexicon()
    f = one("The drug did not help my pain at all.", "pain")
    # "help" lies after "not" and before "."; "pain" is the mention, so not context
    assert f["lex_negated_pos"] == pytest.approx(lex["help"]) == pytest.approx(1.7)
    assert f["lex_negated_neg"] == 0
    assert f["lex_affirmative_pos"] == 0 and f["lex_affirmative_neg"] == 0
    assert f["lex_count"] == 1 and f["lex_sum"] == pytest.approx(1.7) and f["lex_max"] == pytest.approx(1.7)
    assert f["lex_last"] == 0  # the last context token is "."


def test_punctuation_ends_the_negated_part():
    lex = vader_lexicon()
    f = one("The rash was not bad, but the nausea was awful.", "nausea")
    assert f["lex_negated_neg"] == pytest.approx(lex["bad"])
    assert f["lex_affirmative_neg"] == pytest.approx(lex["rash"] + lex["awful"])  # -1.7 - 2.0
    assert f["lex_negated_pos"] == 0 and f["lex_affirmative_pos"] == 0
    assert f["lex_count"] == 3
    assert f["lex_sum"] == pytest.approx(-6.2)
    assert f["lex_max"] == pytest.approx(-1.7)  # the largest score, even when all are negative


def test_contracted_negation_with_a_curly_apostrophe():
    f = one("It didn\u2019t help my headache", "headache")  # spaCy: did + n’t
    assert f["lex_negated_pos"] == pytest.approx(1.7) and f["lex_affirmative_pos"] == 0


def test_last_context_token_score():
    lex = vader_lexicon()
    assert one("The nausea was awful", "nausea")["lex_last"] == pytest.approx(lex["awful"])
    # the mention is the sentence's last token, so the last context token is "was"
    assert one("The awful nausea was", "was")["lex_last"] == 0


def test_mention_shape():
    f = one("Treatment with IL-2 caused fever.", "IL-2")
    assert f["mention_tokens"] == 1
    assert f["mention_has_digit"] == 1 and f["mention_has_hyphen"] == 1
    assert f["mention_all_upper"] == 1 and f["mention_has_inner_upper"] == 1
    assert f["mention_rel_start"] == pytest.approx(15 / 33)
    assert f["log1p_sentence_tokens"] == pytest.approx(np.log1p(6))  # Treatment with IL-2 caused fever .

    f = one("Aspirin quickly relieved the severe headache .", "headache")
    assert f["mention_tokens"] == 1
    assert (f["mention_has_digit"], f["mention_has_inner_upper"], f["mention_has_hyphen"],
            f["mention_all_upper"]) == (0, 0, 0, 0)

    f = one("Patients given 5-FU had severe nausea", "5-FU")  # spaCy: 5 - FU
    assert f["mention_tokens"] == 3 and f["mention_all_upper"] == 1
    assert one("My HbA1c rose", "HbA1c")["mention_has_inner_upper"] == 1
    assert one("My HbA1c rose", "HbA1c")["mention_all_upper"] == 0


def test_a_token_that_overlaps_the_mention_belongs_to_it():
    text = "Aspirin quickly relieved the severe headache ."
    start = text.index("head")
    row = mention_features([text], [start], [start + 4])[0]  # "head" of "headache"
    f = dict(zip(FEATURE_NAMES, row.tolist()))
    assert f["mention_tokens"] == 1 and f["ctx_nouns"] == 1  # "headache" is not context


def test_shared_sentences_give_the_rows_of_one_at_a_time():
    a = "The drug did not help my pain at all."
    b = "The rash was not bad, but the nausea was awful."
    c = "Aspirin quickly relieved the severe headache ."
    texts = [a, b, a, c, b, a]
    mentions = ["pain", "nausea", "drug", "headache", "rash", "help"]
    starts = [t.index(m) for t, m in zip(texts, mentions)]
    ends = [s + len(m) for s, m in zip(starts, mentions)]
    together = mention_features(texts, starts, ends)
    alone = np.concatenate([mention_features([t], [s], [e]) for t, s, e in zip(texts, starts, ends)])
    np.testing.assert_array_equal(together, alone)
    assert not np.array_equal(together[0], together[2])  # same sentence, other mention, other features


def test_progress_lines(monkeypatch, capsys):
    monkeypatch.setattr(features, "PROGRESS_EVERY", 2)
    texts = [f"Side effect number {i} was mild." for i in range(5)]
    mention_features(texts * 2, [5] * 10, [11] * 10)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"[seqlab] features: {k}/5 sentences" for k in (2, 4, 5)]


@pytest.mark.parametrize("start, end, message", [
    (5, 5, "row 1"),  # empty span
    (-1, 3, "row 1"),
    (3, 99, "row 1"),  # past the end of the text
])
def test_bad_span(start, end, message):
    with pytest.raises(SeqlabError, match=message):
        mention_features(["A fine sentence.", "Another one."], [0, start], [4, end])


def test_bad_inputs():
    with pytest.raises(SeqlabError, match="same length"):
        mention_features(["A sentence."], [0, 1], [1, 2])
    with pytest.raises(SeqlabError, match="integer"):
        mention_features(["A sentence."], [0.0], [1.0])
    with pytest.raises(SeqlabError, match="row 0: the text is float"):
        mention_features([float("nan")], [0], [1])
