"""Model registry: a plain dict from name to builder, with the task it learns and its tokenizer.

A builder takes the data-dependent sizes (``vocab_size``, ``num_classes``) and the model's own
keyword arguments. Classifiers give ``forward(tokens, lengths) -> (b, classes)`` logits; the
generator ``forward(tokens, lengths, category) -> (b, t, vocab)`` (see :mod:`seqlab.tasks`).
Builders are named by import path, so ``transformers`` is imported only when MiniLM is used.
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
    task: str  # "classify", "generate", "entity" or "molecule" (seqlab.tasks)
    tokenizer: str  # "word", "char", "wordpiece" or "smiles" (seqlab.tokenizer.TOKENIZERS)
    summary: str
    lr: float = 2e-3  # AdamW learning rate when --lr is not given
    features: bool = False  # takes the hand-made mention features of seqlab.features

    @property
    def builder(self) -> Callable[..., nn.Module]:
        module, name = self.target.split(":")
        return getattr(importlib.import_module(module), name)

    def options(self) -> list[str]:
        return [p for p in inspect.signature(self.builder).parameters if p not in DATA_SIZES]

    @property
    def takes_max_len(self) -> bool:
        return "max_len" in inspect.signature(self.builder).parameters


MODELS: dict[str, Entry] = {
    "lstm": Entry("seqlab.models.lstm:LSTMClassifier", "classify", "word",
                  "LSTM classifier, max-pooled or last state (write-ups 001, 002)"),
    "lstm-stacked": Entry("seqlab.models.lstm:lstm_stacked", "classify", "word",
                          "two stacked LSTMs of 50 and 20 units (write-up 002)"),
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
    "sentence-minilm": Entry("seqlab.models.entity:SentenceMiniLM", "entity", "wordpiece",
                             "all-MiniLM-L6-v2 fine-tuned, mention as token type 1 (write-up 003 baseline)", lr=5e-5),
    # generative models of SMILES (write-up 004 and its next step)
    "smiles-ae": Entry("seqlab.models.molecule:DenseAE", "molecule", "smiles",
                       "dense autoencoder on one-hot SMILES, 32-14-7-14-32 (write-up 004)", lr=1e-3),
    "smiles-vae": Entry("seqlab.models.molecule:SmilesVAE", "molecule", "smiles",
                        "GRU sequence VAE on SMILES, KL annealing and free bits (write-up 004's next step)", lr=1e-3),
    "smiles-rnn": Entry("seqlab.models.molecule:CharRNN", "molecule", "smiles",
                        "LSTM language model on SMILES tokens (the MOSES CharRNN baseline)", lr=1e-3),
}
# set from the data settings (--max-len), not model options
DATA_SIZES = ("vocab_size", "num_classes", "max_len")


def entry(name: str) -> Entry:
    if name not in MODELS:
        raise SeqlabError(f"unknown model {name!r}; available: {', '.join(sorted(MODELS))}")
    return MODELS[name]


def build_model(name: str, **kwargs) -> nn.Module:
    e = entry(name)
    unknown = sorted(set(kwargs) - set(e.options()) - set(DATA_SIZES))
    if unknown:
        raise SeqlabError(f"model {name!r} has no option {unknown[0]!r}; options: {', '.join(sorted(e.options()))}")
    return e.builder(**kwargs)
