"""TF-IDF + linear SVM: the ten-second baseline every text table stands beside.

scikit-learn fits it (``LinearSVC``, ``class_weight="balanced"``, one-vs-rest) in one pass, with its
``C`` picked on the validation split unless given; the fitted weights then live in this module, so
a checkpoint is the same ``model.safetensors`` + ``seqlab_tokenizer.json`` + ``meta.json`` as every
other model's (no pickle) and it is evaluated, promoted and served by the same code.

Input: the ids of a text's n-grams, sorted, each repeated as often as it occurs
(:class:`seqlab.tokenizers.ngrams.NgramTokenizer`), 0-padded. The forward pass computes the text's
TF-IDF vector (sublinear tf ``1 + ln(count)``, smoothed idf of the training split, L2-normalised,
as scikit-learn's ``TfidfTransformer``) and its class scores. The margins are divided by a
temperature fitted on the validation split, so their softmax is a usable probability.
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

C_GRID = (0.03, 0.1, 0.3, 1.0, 3.0)  # C values tried on the validation split when c is 0
TEMPERATURES = np.geomspace(0.01, 10, 61)


class TfidfLinear(nn.Module):
    fitted = True  # learns in one pass (fit_splits), not by gradient steps
    context_start = 0  # ids from here on are a second block, normalised on their own (0: one block)

    def __init__(self, vocab_size: int, num_classes: int, analyzer: str = "char_wb", ngram_min: int = 2,
                 ngram_max: int = 5, min_df: int = 2, max_features: int = 0, c: float = 0.0,
                 sublinear_tf: bool = True):
        super().__init__()
        self.c, self.sublinear_tf = c, sublinear_tf  # the n-gram settings are the tokenizer's (it reads them)
        # until fit_splits replaces them: idf 1, small random weights (id 0, the padding, weighs nothing)
        self.register_buffer("idf", torch.ones(vocab_size))
        self.idf[0] = 0.0
        self.weight = nn.Parameter(torch.randn(vocab_size, num_classes) * 0.01)  # row i: n-gram id i's class weights
        self.bias = nn.Parameter(torch.zeros(num_classes))

    def tfidf(self, tokens: torch.Tensor) -> torch.Tensor:
        """(b, t) weights: each n-gram's L2-normalised tf-idf at its first position, 0 elsewhere."""
        valid = tokens > 0
        first = valid.clone()
        first[:, 1:] &= tokens[:, 1:] != tokens[:, :-1]  # ids are sorted: a new id starts a run
        run = (first.long().cumsum(1) - 1).clamp(min=0)
        counts = torch.zeros(tokens.shape, device=tokens.device).scatter_add_(1, run, valid.float())
        tf = counts.gather(1, run)
        tf = 1 + torch.log(tf.clamp(min=1)) if self.sublinear_tf else tf
        x = torch.where(first, tf * self.idf[tokens], torch.zeros_like(tf))
        if self.context_start:  # two blocks, each L2-normalised on its own (ids below context_start, the rest)
            later = tokens >= self.context_start
            norm = torch.where(later, (x * later).norm(dim=1, keepdim=True), (x * ~later).norm(dim=1, keepdim=True))
            return x / norm.clamp(min=1e-12)
        return x / x.norm(dim=1, keepdim=True).clamp(min=1e-12)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        x = self.tfidf(tokens)
        return F.embedding_bag(tokens, self.weight, per_sample_weights=x, mode="sum") + self.bias

    @torch.no_grad()
    def fit_splits(self, train, validation, *, seed: int = 0, log=print) -> dict:
        """Fit on the encoded ``train`` split (:class:`seqlab.tasks.encoding.EncodedSplit`), choosing C
        (unless given) and the temperature on ``validation``; returns the train metrics of an epoch."""
        from sklearn.svm import LinearSVC

        t0 = time.perf_counter()
        vocab, classes = self.weight.shape
        x_train, y_train = counts(train, vocab), train.labels
        df = np.bincount(x_train.indices, minlength=vocab)
        idf = np.log((1 + x_train.shape[0]) / (1 + df)) + 1  # scikit-learn's smooth idf
        idf[0] = 0.0
        x_train = weigh(x_train, idf, self.sublinear_tf, self.context_start)
        x_val = weigh(counts(validation, vocab), idf, self.sublinear_tf, self.context_start)
        best, tried = None, []
        for c in [self.c] if self.c > 0 else C_GRID:
            svm = LinearSVC(C=c, class_weight="balanced", random_state=seed).fit(x_train, y_train)
            coef, intercept = svm.coef_, svm.intercept_
            if classes == 2 and coef.shape[0] == 1:  # one margin d: class scores (-d/2, d/2), softmax sigmoid(d)
                coef, intercept = np.vstack([-coef / 2, coef / 2]), np.array([-intercept[0] / 2, intercept[0] / 2])
            margins = x_val @ coef.T + intercept
            f1 = macro_f1(validation.labels, margins.argmax(1), classes)
            # the temperature that makes softmax(margins / t) a probability; its loss breaks F1 ties
            loss, t = min((cross_entropy(margins / t, validation.labels), t) for t in TEMPERATURES)
            tried.append(f"C {c:g}: {f1:.4f}")
            if best is None or (f1, -loss) > (best[0], -best[1]):
                best = (f1, loss, c, t, coef, intercept)
        _, _, c, t, coef, intercept = best
        self.idf.copy_(torch.from_numpy(idf))
        self.weight.copy_(torch.from_numpy(coef.T / t))
        self.weight[0] = 0.0
        self.bias.copy_(torch.from_numpy(intercept / t))
        took = time.perf_counter() - t0
        log(f"[seqlab] tfidf-linear: validation macro-F1 {', '.join(tried)}; C {c:g} chosen (a tie goes to the lower "
            f"validation loss), temperature {t:.3g}; {vocab - 1} n-grams, fitted in {took:.1f}s")
        return {"train_loss": cross_entropy((x_train @ coef.T + intercept) / t, y_train), "train_samples_per_s": len(y_train) / took,
                "train_tokens_per_s": int(train.lengths.sum()) / took, "epoch_time_s": took, "c": float(c),
                "temperature": float(t)}


def counts(split, vocab: int):
    """(n, vocab) CSR counts of an encoded split's ids (repeated ids add up)."""
    from scipy import sparse

    # copy=True: scipy would otherwise sort and merge the split's own id array in place
    m = sparse.csr_matrix((np.ones(len(split.ids), np.float64), split.ids, split.offsets), shape=(len(split), vocab),
                          copy=True)
    m.sum_duplicates()
    return m


def weigh(x, idf: np.ndarray, sublinear: bool, split: int = 0):
    """Counts -> tf-idf rows (in place), L2-normalised; with ``split``, columns ``[:split]`` and
    ``[split:]`` each on their own (as scikit-learn's FeatureUnion of two TfidfVectorizers)."""
    from scipy import sparse
    from sklearn.preprocessing import normalize

    if sublinear:
        x.data = 1 + np.log(x.data)
    x.data *= idf[x.indices]
    if split:
        return sparse.hstack([normalize(x[:, :split]), normalize(x[:, split:])], format="csr")
    return normalize(x, copy=False)


def macro_f1(y: np.ndarray, pred: np.ndarray, classes: int) -> float:
    from seqlab.tasks.metrics import confusion, from_confusion

    return float(from_confusion(confusion(y, pred, classes))["macro_f1"])


def cross_entropy(logits: np.ndarray, y: np.ndarray) -> float:
    z = logits - logits.max(1, keepdims=True)
    return float(np.mean(np.log(np.exp(z).sum(1)) - z[np.arange(len(y)), y]))


class MentionTfidfLinear(TfidfLinear):
    """The TF-IDF + linear SVM baseline of the entity tables: a mention's n-grams and its context words'.

    Its input is :class:`seqlab.tokenizers.ngrams.MentionNgramTokenizer`'s: the mention's n-grams
    (ids below ``context_start``, set from that vocabulary) and the word 1-2-grams of the
    ``context_words`` words either side, each block's tf-idf L2-normalised on its own; one linear SVM
    over both. It answers as the entity models do (``{"logits"}``; spans and features unused).
    """

    def __init__(self, vocab_size: int, num_classes: int, analyzer: str = "char_wb", ngram_min: int = 2,
                 ngram_max: int = 5, min_df: int = 2, max_features: int = 0, c: float = 0.0,
                 sublinear_tf: bool = True, context_words: int = 5, context_start: int = 0):
        super().__init__(vocab_size, num_classes, analyzer, ngram_min, ngram_max, min_df, max_features, c, sublinear_tf)
        self.context_start = context_start  # the tokenizer's (the data's), not an option

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor | None = None, spans=None, features=None) -> dict:
        return {"logits": super().forward(tokens)}
