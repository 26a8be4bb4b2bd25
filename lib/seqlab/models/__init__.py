"""Model registry: a plain dict from name to builder, with the task it learns and its tokenizer.

A builder takes the data-dependent sizes (``vocab_size``, ``num_classes``, ``max_len``, and
``vectors`` for pre-trained word vectors) and the model's own keyword arguments: its options.
The builder's signature is the one source of which options a model has, their types and defaults
(``seqlab models``, ``seqlab train --model NAME --help``); :data:`OPTIONS` only adds the help text
and the valid range of option names that several families share. Classifiers give
``forward(tokens, lengths) -> (b, classes)`` logits; the generator ``forward(tokens, lengths,
category) -> (b, t, vocab)`` (see :mod:`seqlab.tasks`). Builders are named by import path, so
``transformers`` is imported only when MiniLM is used.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass

import torch.nn as nn

from seqlab.errors import SeqlabError


@dataclass(frozen=True)
class Entry:
    target: str  # "module:callable"
    task: str  # "classify", "generate", "entity" or "molecule" (seqlab.tasks.TASKS)
    tokenizer: str  # "word", "char", "wordpiece", "smiles", "ngrams", ... (seqlab.tokenizers.TOKENIZERS)
    summary: str
    lr: float = 2e-3  # AdamW learning rate when --lr is not given
    features: bool = False  # takes the hand-made mention features of seqlab.data.features
    selfies: bool = False  # also reads molecules as SELFIES symbols (--representation selfies)

    @property
    def builder(self) -> Callable[..., nn.Module]:
        module, name = self.target.split(":")
        return getattr(importlib.import_module(module), name)

    def parameters(self) -> dict[str, inspect.Parameter]:
        """The builder's options: name -> parameter (annotation as written, default)."""
        return {n: p for n, p in inspect.signature(self.builder).parameters.items() if n not in DATA_SIZES}

    def options(self) -> list[str]:
        return list(self.parameters())

    @property
    def takes_max_len(self) -> bool:
        return "max_len" in inspect.signature(self.builder).parameters

    @property
    def fitted(self) -> bool:
        """It is fitted in one pass (scikit-learn), on one worker, not trained by epochs."""
        return getattr(self.builder, "fitted", False)

    @property
    def takes_vectors(self) -> bool:
        """It has a word embedding layer that can start from pre-trained vectors (``--embeddings``)."""
        return "vectors" in inspect.signature(self.builder).parameters


MODELS: dict[str, Entry] = {
    "lstm": Entry("seqlab.models.lstm:LSTMClassifier", "classify", "word",
                  "LSTM classifier, max-pooled or last state (write-ups 001, 002)"),
    "lstm-stacked": Entry("seqlab.models.lstm:lstm_stacked", "classify", "word",
                          "two stacked LSTMs of 50 and 20 units (write-up 002)"),
    # the ten-second baseline beside every text table: fitted by scikit-learn, served as a torch module
    "tfidf-linear": Entry("seqlab.models.linear:TfidfLinear", "classify", "ngrams",
                          "TF-IDF of character (or word) n-grams + linear SVM: the classical baseline"),
    "cnn": Entry("seqlab.models.cnn:CNNClassifier", "classify", "word",
                 "1D-CNN over word embeddings, 3 x Conv1D(128, 5) (write-up 000)"),
    "minilm": Entry("seqlab.models.bert:MiniLMClassifier", "classify", "wordpiece",
                    "all-MiniLM-L6-v2 fine-tuned (BERT family, write-up 000)", lr=5e-5),
    "char-lstm": Entry("seqlab.models.charlm:CharLSTM", "generate", "char",
                       "char-level LSTM text generator, per category or conditional (write-up 000)"),
    # entity mentions in their sentence (write-up 003); lr 0.01 is the thesis'
    "lstm-ca": Entry("seqlab.models.entity:LSTMCA", "entity", "word",
                     "LSTM+CA: context and entity LSTMs with cross-attention (write-up 003)", lr=1e-2),
    "lstm-ca-feat": Entry("seqlab.models.entity:lstm_ca_feat", "entity", "word",
                          "LSTM+CA+feat: LSTM+CA with bag of words, POS, sentiment and shape features (003)",
                          lr=1e-2, features=True),
    "td-lstm": Entry("seqlab.models.entity:TDLSTM", "entity", "word",
                     "target-dependent LSTM over left and right context (write-up 003 baseline)", lr=1e-2),
    "sentence-lstm": Entry("seqlab.models.entity:sentence_lstm", "entity", "word",
                           "LSTM over the sentence, mention marked (write-up 003 baseline)", lr=1e-2),
    "sentence-cnn": Entry("seqlab.models.entity:sentence_cnn", "entity", "word",
                          "CNN over the sentence, mention marked (write-up 003 baseline)"),
    # the ten-second baseline beside the entity tables: the mention's n-grams and its context words'
    "mention-tfidf-linear": Entry("seqlab.models.linear:MentionTfidfLinear", "entity", "mention-ngrams",
                                  "TF-IDF of the mention's n-grams and its context words + linear SVM: the baseline"),
    "sentence-minilm": Entry("seqlab.models.entity:SentenceMiniLM", "entity", "wordpiece",
                             "all-MiniLM-L6-v2 fine-tuned, mention as token type 1 (write-up 003 baseline)", lr=5e-5),
    # generative models of SMILES (write-up 004 and its next step)
    "smiles-ae": Entry("seqlab.models.molecule:DenseAE", "molecule", "smiles",
                       "dense autoencoder on one-hot SMILES, 32-14-7-14-32 (write-up 004)", lr=1e-3),
    "smiles-vae": Entry("seqlab.models.molecule:SmilesVAE", "molecule", "smiles",
                        "GRU sequence VAE on SMILES, KL annealing and free bits (write-up 004's next step)", lr=1e-3,
                        selfies=True),
    "smiles-rnn": Entry("seqlab.models.molecule:CharRNN", "molecule", "smiles",
                        "LSTM language model on SMILES tokens (the MOSES CharRNN baseline)", lr=1e-3, selfies=True),
}
# set from the data (--max-len, the vocabulary and its blocks, the labels, --embeddings), not model options
DATA_SIZES = ("vocab_size", "num_classes", "max_len", "vectors", "context_start")


@dataclass(frozen=True)
class Option:
    """Help text and valid range of an option name that several model families share."""

    help: str
    low: float | None = None  # smallest value
    below: float | None = None  # values must stay below this
    choices: tuple[str, ...] = ()


OPTIONS: dict[str, Option] = {
    "embed_dim": Option("embedding width (char-lstm: 0 = one-hot characters)", low=0),
    "hidden": Option("LSTM width (the GRU's for smiles-vae; searched)", low=1),
    "hidden2": Option("width of a second, narrower layer (lstm-stacked: LSTM(20); smiles-ae: 14)", low=0),
    "dropout": Option("dropout (searched)", low=0, below=1),
    "spatial_dropout": Option("dropout of whole embedding channels", low=0, below=1),
    "word_dropout": Option("share of decoder input tokens replaced by <unk>", low=0, below=1),
    "bidirectional": Option("run the LSTM in both directions (packed; ~30x slower to train on CPU)"),
    "pooling": Option("'max' over time steps or the 'last' hidden state (write-up 001)", choices=("max", "last")),
    "num_layers": Option("stacked recurrent layers", low=1),
    "head_dim": Option("width of the dense layer before the output (0 = none)", low=0),
    "filters": Option("filters per convolution", low=1),
    "kernel_size": Option("convolution width", low=1),
    "blocks": Option("convolution blocks", low=1),
    "pool": Option("max-pool width after each convolution", low=1),
    "conditional": Option("one model for all categories, with a category input"),
    "category_dim": Option("width of the learned category vector of a conditional model", low=1),
    "l2": Option("L2 regularisation of the weight matrices added to the loss (thesis: 0.001)", low=0),
    "features": Option("hand-made features per mention joined before the last layer", low=0),
    "bow": Option("add the context's bag of words before the last layer"),
    "freeze_embeddings": Option("keep the word vectors fixed during training"),
    "pretrained": Option("start from the pre-trained all-MiniLM-L6-v2 weights"),
    "latent": Option("latent size (write-up 004's autoencoder: 7)", low=1),
    "beta": Option("final KL weight", low=0),
    "anneal_steps": Option("steps over which the KL weight rises from 0 to beta", low=0),
    "free_bits": Option("least KL (nats) each latent dimension is charged", low=0),
    "analyzer": Option("n-grams of characters within words (char_wb), across them (char), or of words",
                       choices=("char_wb", "char", "word")),
    "ngram_min": Option("shortest n-gram", low=1),
    "ngram_max": Option("longest n-gram", low=1),
    "min_df": Option("least number of training texts an n-gram must occur in", low=1),
    "max_features": Option("keep the most frequent n-grams only (0 = all)", low=0),
    "c": Option("the SVM's C, inverse regularisation (0 = pick from 0.03-3 on the validation split)", low=0),
    "sublinear_tf": Option("weigh a count n as 1 + ln(n)"),
    "context_words": Option("words either side of the mention whose 1-2-grams are features (0 = the mention only)",
                            low=0),
    "window": Option("read a text longer than this many word pieces as overlapping windows and average their "
                     "scores (0 = read the first --max-len pieces only)", low=0),
    "stride": Option("word pieces from one window's start to the next (0 = three quarters of a window)", low=0),
}


def entry(name: str) -> Entry:
    if name not in MODELS:
        raise SeqlabError(f"unknown model {name!r}; available: {', '.join(sorted(MODELS))}")
    return MODELS[name]


def option_type(parameter: inspect.Parameter) -> type:
    """``int``, ``float``, ``bool`` or ``str``: the option's type, from its annotation (as written)."""
    text = str(parameter.annotation)
    for t in (bool, int, float, str):
        if t.__name__ in text.replace(" ", "").split("|") or parameter.annotation is t:
            return t
    return type(parameter.default) if parameter.default is not None else str


def check_option(name: str, value) -> None:
    """Refuse a value outside the option's range, naming the option."""
    spec = OPTIONS.get(name)
    if spec is None or value is None:
        return
    if spec.choices and value not in spec.choices:
        raise SeqlabError(f"{name} must be {' or '.join(repr(c) for c in spec.choices)}, got {value!r}")
    if isinstance(value, bool):
        return
    if spec.low is not None and spec.below is not None and not spec.low <= value < spec.below:
        raise SeqlabError(f"{name} must be in [{spec.low:g}, {spec.below:g}), got {value}")
    if spec.low is not None and value < spec.low:
        raise SeqlabError(f"{name} must be {'positive' if spec.low == 1 else f'>= {spec.low:g}'}, got {value}")


def build_model(name: str, **kwargs) -> nn.Module:
    e = entry(name)
    unknown = sorted(set(kwargs) - set(e.options()) - set(DATA_SIZES))
    if unknown:
        raise SeqlabError(f"model {name!r} has no option {unknown[0]!r}; options: {', '.join(sorted(e.options()))}")
    return e.builder(**kwargs)
