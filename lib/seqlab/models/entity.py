"""Entity-mention classifiers (write-up 003): a mention is classified in the context of its sentence.

Every model here takes the same inputs (see :class:`seqlab.tasks.entity.EntityClassification`):

    tokens   (b, t)  the sentence's ids, right-padded with 0
    lengths  (b,)    its length
    spans    (b, 2)  the mention's token positions [start, end) in the sentence
    features (b, f)  hand-made features (LSTM+CA+feat only), standardised on the training split

and returns ``{"logits": (b, classes), ...}``; ``penalty`` (the L2 term, training only) and the
attention weights ride along. Models:

- :class:`LSTMCA`: the thesis' LSTM with cross-attention (same shape as the Interactive Attention
  Network); ``features > 0`` is LSTM+CA+feat (bag of words of the context + the hand-made features
  joined before the last layer).
- :class:`TDLSTM`: target-dependent LSTM, a forward LSTM over the left context up to the mention's
  end and one over the right context, read backwards, down to its start.
- ``sentence_lstm``/``sentence_cnn``/``sentence_minilm``: the whole-sentence baselines. Each is the
  text classifier of :mod:`seqlab.models` with the mention marked: a learned "inside the mention"
  vector added to its word embeddings (MiniLM: token type 1 on the mention's word pieces), so two
  mentions of one sentence can get different labels.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from seqlab.models.lstm import LSTMClassifier
from seqlab.modules.attention import attend, masked_mean
from seqlab.modules.dropout import SpatialDropout
from seqlab.modules.embeddings import word_embedding
from seqlab.modules.losses import l2_penalty


def positions(spans: torch.Tensor, lengths: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(in_sentence, in_mention)``: (b, t) boolean masks of the real tokens and the mention's tokens."""
    pos = torch.arange(t, device=spans.device)[None, :]
    return pos < lengths[:, None], (pos >= spans[:, :1]) & (pos < spans[:, 1:])


def span_tokens(tokens: torch.Tensor, spans: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The mentions' own ids, right-padded with 0: ``(ids (b, m), lengths (b,))``."""
    n = (spans[:, 1] - spans[:, 0]).clamp(min=1)
    # A traced graph (seqlab.export) cannot size a tensor by the data: it pads to the sentence's width instead,
    # which the entity LSTM's mask makes exact.
    width = tokens.shape[1] if torch.jit.is_tracing() else int(n.max())
    offs = torch.arange(width, device=tokens.device)[None, :]
    idx = (spans[:, :1] + offs).clamp(max=tokens.shape[1] - 1)
    ids = tokens.gather(1, idx).masked_fill(offs >= n[:, None], 0)
    return ids, n


def reverse_rows(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Each row's first ``length`` steps in reverse order, padding kept at the right (x: (b, t, ...))."""
    t = x.shape[1]
    pos = torch.arange(t, device=x.device)[None, :]
    idx = torch.where(pos < lengths[:, None], lengths[:, None] - 1 - pos, pos)  # (b, t)
    return x.gather(1, idx.view(*idx.shape, *([1] * (x.dim() - 2))).expand_as(x))


class LSTMCA(nn.Module):
    """LSTM with cross-attention between context and entity (thesis, section 2.2.1).

    c_avg, e_avg = mean of the context's / entity's LSTM states;
    alpha_i = softmax_i(tanh(h^c_i W_a e_avg + b_a)), beta_i = softmax_i(tanh(h^e_i W_a c_avg + b_a));
    c_r = sum alpha_i h^c_i, e_r = sum beta_i h^e_i; [c_r; e_r (; bow; features)] -> dense -> softmax.
    The context is the whole sentence (the mention included), as in the thesis; the two LSTMs
    share the word embeddings. Defaults are the thesis': 300 hidden units, 200-d embeddings, L2 0.001.
    """

    def __init__(
        self,
        *,
        vocab_size: int,
        num_classes: int,
        embed_dim: int = 200,
        hidden: int = 300,
        dropout: float = 0.2,
        l2: float = 1e-3,
        features: int = 0,
        bow: bool | None = None,
        freeze_embeddings: bool = False,
        vectors: torch.Tensor | None = None,
    ):
        super().__init__()
        self.l2 = l2
        self.vocab_size = vocab_size
        self.bow = features > 0 if bow is None else bow
        self.embed = word_embedding(vocab_size, embed_dim, vectors=vectors, freeze=freeze_embeddings)
        self.drop_embed = SpatialDropout(dropout)
        self.context_lstm = nn.LSTM(embed_dim, hidden, batch_first=True)
        self.entity_lstm = nn.LSTM(embed_dim, hidden, batch_first=True)
        self.w_a = nn.Parameter(torch.empty(hidden, hidden))
        nn.init.xavier_uniform_(self.w_a)
        self.b_a = nn.Parameter(torch.zeros(()))
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(2 * hidden + features, num_classes)
        # a linear map of the context's binary bag of words is one weight per (word, class): the
        # thesis' bag-of-words features, without a vocabulary-wide input vector
        self.bow_out = nn.Embedding(vocab_size, num_classes, padding_idx=0) if self.bow else None
        if self.bow_out is not None:
            nn.init.zeros_(self.bow_out.weight)
        self.features = features

    def forward(self, tokens, lengths, spans, features=None) -> dict[str, torch.Tensor]:
        lengths, spans = lengths.to(tokens.device), spans.to(tokens.device)
        in_sentence, in_mention = positions(spans, lengths, tokens.shape[1])
        entity, n = span_tokens(tokens, spans)  # (b, m), (b,)
        in_entity = torch.arange(entity.shape[1], device=tokens.device)[None, :] < n[:, None]
        self.context_lstm.flatten_parameters()
        self.entity_lstm.flatten_parameters()
        # forward-only LSTMs over right padding are exact for the real steps, which the masks keep
        h_c, _ = self.context_lstm(self.drop_embed(self.embed(tokens)))  # (b, t, hidden)
        h_e, _ = self.entity_lstm(self.drop_embed(self.embed(entity)))  # (b, m, hidden)
        c_avg, e_avg = masked_mean(h_c, in_sentence), masked_mean(h_e, in_entity)
        alpha, c_r = attend(h_c, in_sentence, e_avg, self.w_a, self.b_a)
        beta, e_r = attend(h_e, in_entity, c_avg, self.w_a, self.b_a)
        parts = [c_r, e_r]
        if self.features:
            if features is None or features.shape[-1] != self.features:
                raise ValueError(f"this model takes {self.features} hand-made features per mention, got "
                                 f"{None if features is None else features.shape[-1]}")
            parts.append(features.to(c_r.dtype))
        logits = self.out(self.drop(torch.cat(parts, dim=-1)))  # (b, classes)
        if self.bow_out is not None:
            # binary bag of words of the sentence outside the mention: each distinct word counts once
            bag = torch.zeros(tokens.shape[0], self.vocab_size, device=tokens.device, dtype=logits.dtype)
            bag.scatter_(1, tokens.masked_fill(in_mention | ~in_sentence, 0), 1.0)
            bag[:, 0] = 0
            logits = logits + bag @ self.bow_out.weight
        out = {"logits": logits, "context_attention": alpha, "entity_attention": beta}
        if self.training and self.l2:
            out["penalty"] = l2_penalty(self, self.l2)
        return out


class TDLSTM(nn.Module):
    """Target-dependent LSTM (Tang et al. 2016; thesis section 2.6): [h_left; h_right] -> dense.

    The left LSTM reads the sentence up to the mention's last token, the right one reads it from
    the end back to the mention's first token; each run once over the padded batch and read at
    the mention's edge, which is exact for a forward-only LSTM.
    """

    def __init__(self, *, vocab_size: int, num_classes: int, embed_dim: int = 200, hidden: int = 300,
                 dropout: float = 0.2, l2: float = 1e-3, freeze_embeddings: bool = False,
                 vectors: torch.Tensor | None = None):
        super().__init__()
        self.l2 = l2
        self.embed = word_embedding(vocab_size, embed_dim, vectors=vectors, freeze=freeze_embeddings)
        self.drop_embed = SpatialDropout(dropout)
        self.left = nn.LSTM(embed_dim, hidden, batch_first=True)
        self.right = nn.LSTM(embed_dim, hidden, batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(2 * hidden, num_classes)

    def forward(self, tokens, lengths, spans, features=None) -> dict[str, torch.Tensor]:
        lengths, spans = lengths.to(tokens.device), spans.to(tokens.device)
        x = self.drop_embed(self.embed(tokens))  # (b, t, e)
        rows = torch.arange(tokens.shape[0], device=tokens.device)
        self.left.flatten_parameters()
        self.right.flatten_parameters()
        h_left, _ = self.left(x)  # state i has read tokens 0..i
        h_right, _ = self.right(reverse_rows(x, lengths))  # state j has read tokens len-1 .. len-1-j
        feat = torch.cat([h_left[rows, spans[:, 1] - 1], h_right[rows, lengths - 1 - spans[:, 0]]], dim=-1)
        out = {"logits": self.out(self.drop(feat))}
        if self.training and self.l2:
            out["penalty"] = l2_penalty(self, self.l2)
        return out


class MarkedSentence(nn.Module):
    """A text classifier over the whole sentence with the mention marked in its embeddings."""

    def __init__(self, base: nn.Module, embed_dim: int):
        super().__init__()
        self.base = base
        self.mark = nn.Parameter(torch.randn(embed_dim) * 0.1)  # added to the mention's word vectors

    def forward(self, tokens, lengths, spans, features=None) -> dict[str, torch.Tensor]:
        _, in_mention = positions(spans.to(tokens.device), lengths.to(tokens.device), tokens.shape[1])
        extra = in_mention[..., None].to(self.mark.dtype) * self.mark  # (b, t, e)
        return {"logits": self.base(tokens, lengths, extra=extra)}


def sentence_lstm(*, vocab_size: int, num_classes: int, embed_dim: int = 200, hidden: int = 300,
                  dropout: float = 0.2, freeze_embeddings: bool = False,
                  vectors: torch.Tensor | None = None) -> MarkedSentence:
    """The thesis' LSTM baseline: one LSTM over the sentence (here with the mention marked), last state."""
    base = LSTMClassifier(vocab_size=vocab_size, num_classes=num_classes, embed_dim=embed_dim, hidden=hidden,
                          dropout=dropout, spatial_dropout=dropout, pooling="last", head_dim=0,
                          freeze_embeddings=freeze_embeddings, vectors=vectors)
    return MarkedSentence(base, embed_dim)


def sentence_cnn(*, vocab_size: int, num_classes: int, embed_dim: int = 200, filters: int = 128,
                 kernel_size: int = 3, blocks: int = 1, dropout: float = 0.5,
                 freeze_embeddings: bool = False, vectors: torch.Tensor | None = None) -> MarkedSentence:
    """A CNN over the sentence with the mention marked (Kim 2014 shape: one conv, global max)."""
    from seqlab.models.cnn import CNNClassifier

    base = CNNClassifier(vocab_size=vocab_size, num_classes=num_classes, embed_dim=embed_dim, filters=filters,
                         kernel_size=kernel_size, blocks=blocks, pool=1, dropout=dropout,
                         freeze_embeddings=freeze_embeddings, vectors=vectors)
    return MarkedSentence(base, embed_dim)


class SentenceMiniLM(nn.Module):
    """all-MiniLM-L6-v2 fine-tuned on the sentence, the mention's word pieces given token type 1."""

    def __init__(self, *, vocab_size: int, num_classes: int, dropout: float = 0.1, pretrained: bool = True):
        super().__init__()
        from seqlab.models.bert import MiniLMClassifier

        self.base = MiniLMClassifier(vocab_size=vocab_size, num_classes=num_classes, dropout=dropout,
                                     pretrained=pretrained)

    def forward(self, tokens, lengths, spans, features=None) -> dict[str, torch.Tensor]:
        in_sentence, in_mention = positions(spans.to(tokens.device), lengths.to(tokens.device), tokens.shape[1])
        logits = self.base.hf(input_ids=tokens, attention_mask=in_sentence.long(),
                              token_type_ids=in_mention.long()).logits
        return {"logits": logits}


def lstm_ca_feat(*, vocab_size: int, num_classes: int, embed_dim: int = 200, hidden: int = 300,
                 dropout: float = 0.2, l2: float = 1e-3, freeze_embeddings: bool = False,
                 vectors: torch.Tensor | None = None) -> LSTMCA:
    """LSTM+CA+feat (thesis section 2.2.3): the context's bag of words and the features of
    :data:`seqlab.data.features.FEATURE_NAMES` joined to [c_r; e_r] before the last layer."""
    from seqlab.data.features import FEATURE_NAMES

    return LSTMCA(vocab_size=vocab_size, num_classes=num_classes, embed_dim=embed_dim, hidden=hidden,
                  dropout=dropout, l2=l2, features=len(FEATURE_NAMES), bow=True,
                  freeze_embeddings=freeze_embeddings, vectors=vectors)
