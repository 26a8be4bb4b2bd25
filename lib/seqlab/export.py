"""``seqlab export``: a checkpoint written as files that load without seqlab.

    minilm, sentence-minilm   a Hugging Face folder (``save_pretrained``): weights, config with the labels,
                              tokenizer; ``transformers`` loads it
    every other model         model.pt, TorchScript: ``torch.jit.load("model.pt", map_location="cpu")`` in
                              plain PyTorch, with one method per use (see below)
    export.json               each method's inputs and outputs (name, dtype, shape, meaning), the task, the
                              labels, the format, how to load it, the model's options, the seqlab version
    tokenizer files           (TorchScript) what :func:`seqlab.tokenizers.tokenizer_files` writes: a Hugging Face
                              ``tokenizer.json`` where the tokenizer can be one, and always ``seqlab_tokenizer.json``,
                              plain JSON whose ``vocab`` list gives each token's id

TorchScript comes from tracing a small wrapper per model family whose methods take and return plain
tensors. A trace records one run, so a Python branch on a shape or a value is frozen as it went that
time (arithmetic on a shape is recorded, a comparison is not). The wrappers keep every model on
branches that hold for any input: a CNN's tokens get enough zeros on the right that no convolution
sees fewer steps than its kernel (exact: a CNN's logits do not depend on right padding), and LSTM+CA's
entity LSTM runs over the sentence's width, not the longest mention's
(:func:`seqlab.models.entity.span_tokens`). Every export is checked before it is kept: each method
runs, from the written file and in seqlab, on batches of other sizes and lengths than the trace's
(rows of one token, unsorted lengths, a mention as wide as its sentence) and must agree to
:data:`ATOL`; a molecule decoder must also decode the same ids greedily as the model's ``generate``.
The graphs are traced on the CPU, with its device baked in: load them there (``map_location="cpu"``).

Methods (``tokens`` are int64 ids right-padded with 0, ``lengths`` int64 real tokens per row):

    classify   forward(tokens, lengths) -> logits
    entity     forward(tokens, lengths, spans[, features]) -> logits[, context_attention (LSTM+CA)]
    char-lstm  forward(tokens[, category], h, c) -> logits, h, c: the next character's logits after each
               token, run on from the LSTM state (zeros: from the start); sampling feeds one id at a time
    smiles-vae forward(tokens, lengths) -> logits, mu, logvar; encode(tokens, lengths) -> mu, logvar;
               initial_state(z) -> h; decode(tokens, z, h) -> logits, h (teacher-forced, or one step)
    smiles-rnn forward(tokens, lengths) -> logits; decode(tokens, h, c) -> logits, h, c
    smiles-ae  forward(tokens, lengths) -> logits; encode(tokens, lengths) -> z; decode(z) -> logits

Sampling stays a loop in the user's code, as in seqlab (:func:`seqlab.models.molecule.autoregress`);
``export.json`` says how (start id, banned ids, prior).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from seqlab import __version__, checkpoint
from seqlab.errors import SeqlabError
from seqlab.models.bert import MiniLMClassifier
from seqlab.models.charlm import CharLSTM
from seqlab.models.cnn import CNNClassifier
from seqlab.models.entity import LSTMCA, MarkedSentence, SentenceMiniLM
from seqlab.models.molecule import CharRNN, DenseAE, SmilesVAE, autoregress, sample_step, until_eos
from seqlab.tokenizers import tokenizer_files

ATOL = 1e-5  # most an export's output may differ from seqlab's (and relatively, 1e-5 of its size)
TRACE_LENGTHS = [3, 5, 2]  # the batch traced
CHECK_LENGTHS = ([1, 7, 3, 9, 2], [1], [4], [2, 1], [12, 1, 4, 12, 6, 2, 11])  # the batches checked
CHECKED = {"atol": ATOL, "rtol": ATOL, "batches": [list(x) for x in CHECK_LENGTHS]}  # what export.json says of it

Outputs = torch.Tensor | tuple[torch.Tensor, ...]
Check = tuple[str, Outputs, Outputs]  # (what, export's outputs, seqlab's)


def spec(name: str, dtype: str, shape: str, meaning: str) -> dict:
    """An input or output of a method, as ``export.json`` lists it."""
    return {"name": name, "dtype": dtype, "shape": shape, "meaning": meaning}


TOKENS = spec("tokens", "int64", "(batch, time)", "token ids, right-padded with 0")
LENGTHS = spec("lengths", "int64", "(batch,)", "real tokens of each row (>= 1)")
LOGITS = spec("logits", "float32", "(batch, classes)", "class scores, in the order of `labels`; softmax for probabilities")
MOLECULE = spec("tokens", "int64", "(batch, time)", "ids of <bos> SMILES tokens <eos>, right-padded with 0")
STEP_LOGITS = spec("logits", "float32", "(batch, time, vocab)", "scores of the token after each input token")


def random_tokens(lengths: list[int], vocab: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random ids in [1, vocab) right-padded with 0: ``(tokens (b, max(lengths)), lengths (b,))``."""
    tokens = torch.zeros(len(lengths), max(lengths), dtype=torch.long)
    for i, n in enumerate(lengths):
        tokens[i, :n] = torch.randint(1, vocab, (n,), generator=g)
    return tokens, torch.tensor(lengths)


def random_spans(lengths: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """(b, 2) mentions [start, end) inside each row; the first spans its whole row."""
    starts = [0] + [int(torch.randint(0, int(n), (), generator=g)) for n in lengths[1:]]
    ends = [int(lengths[0])] + [int(torch.randint(s + 1, int(n) + 1, (), generator=g))
                                for s, n in zip(starts[1:], lengths[1:])]
    return torch.tensor([starts, ends]).T.contiguous()


class Exported(nn.Module):
    """A model's traceable face: methods of plain tensors, what ``export.json`` says of them, and checks.

    Subclasses set ``methods()`` (name -> inputs, outputs), ``example()`` (inputs of a method for a batch
    of lengths) and ``checks()`` (the written file's outputs next to seqlab's on one batch)."""

    def __init__(self, model: nn.Module, meta: dict):
        super().__init__()
        self.model = model
        self.vocab, self.classes = int(meta["vocab_size"]), len(meta["labels"])

    def methods(self) -> dict[str, tuple[list[dict], list[dict]]]:
        raise NotImplementedError

    def example(self, method: str, lengths: list[int], g: torch.Generator) -> tuple[torch.Tensor, ...]:
        return random_tokens(lengths, self.vocab, g)

    def checks(self, ts: torch.jit.ScriptModule, lengths: list[int], g: torch.Generator) -> Iterator[Check]:
        inputs = self.example("forward", lengths, g)
        yield "forward", ts(*inputs), self.reference(*inputs)

    def reference(self, *inputs: torch.Tensor) -> Outputs:
        """seqlab's own outputs for ``forward``'s inputs."""
        raise NotImplementedError

    def notes(self) -> dict:
        return {}


def cnn_padding(model: nn.Module) -> int:
    """Zeros to add after a CNN's tokens so that every block gets at least its kernel's width of steps
    (a shorter input takes a Python branch, which a trace would freeze); 0 for other models."""
    cnn = model.base if isinstance(model, MarkedSentence) else model
    if not isinstance(cnn, CNNClassifier):
        return 0
    need = 1  # steps the last block's output must have
    for block in reversed(cnn.blocks):
        need = (need - 1) * block.pool + block.kernel_size  # ceil((t - k + 1) / pool) >= need
    return need


class Classifier(Exported):
    def __init__(self, model: nn.Module, meta: dict):
        super().__init__(model, meta)
        self.pad = cnn_padding(model)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.model(F.pad(tokens, (0, self.pad)), lengths)

    def methods(self):
        return {"forward": ([TOKENS, LENGTHS], [LOGITS])}

    def reference(self, tokens, lengths):
        return self.model(tokens, lengths)


class EntityClassifier(Exported):
    def __init__(self, model: nn.Module, meta: dict):
        super().__init__(model, meta)
        self.pad = cnn_padding(model)
        self.attention = isinstance(model, LSTMCA)
        self.features = model.features if isinstance(model, LSTMCA) else 0

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor, spans: torch.Tensor,
                features: torch.Tensor | None = None) -> Outputs:
        return self.outputs(self.model(F.pad(tokens, (0, self.pad)), lengths, spans, features))

    def outputs(self, out: dict[str, torch.Tensor]) -> Outputs:
        """The tensors ``forward`` returns, from the model's dict."""
        return (out["logits"], out["context_attention"]) if self.attention else out["logits"]

    def methods(self):
        inputs = [TOKENS, LENGTHS, spec("spans", "int64", "(batch, 2)", "the mention's tokens [start, end) in the row")]
        if self.features:
            inputs.append(spec("features", "float32", "(batch, features)",
                               "hand-made mention features, standardised (see `features`)"))
        outputs = [LOGITS]
        if self.attention:
            outputs.append(spec("context_attention", "float32", "(batch, time)", "attention over the sentence"))
        return {"forward": (inputs, outputs)}

    def example(self, method, lengths, g):
        tokens, lengths_ = random_tokens(lengths, self.vocab, g)
        inputs = (tokens, lengths_, random_spans(lengths_, g))
        return inputs + ((torch.randn(len(lengths), self.features, generator=g),) if self.features else ())

    def reference(self, *inputs):
        return self.outputs(self.model(*inputs))


class CharGenerator(Exported):
    """``forward(tokens, h, c)``: ``CharLSTM.step`` with its state as two tensors."""

    def __init__(self, model: CharLSTM, meta: dict):
        super().__init__(model, meta)
        self.layers, self.hidden = model.lstm.num_layers, model.lstm.hidden_size

    def forward(self, tokens: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, ...]:
        logits, (h, c) = self.model.step(tokens, None, (h, c))
        return logits, h, c

    def state_specs(self) -> list[dict]:
        return [spec(n, "float32", "(layers, batch, hidden)", f"LSTM {n} state: zeros at the start, then the one "
                                                                f"returned") for n in ("h", "c")]

    def methods(self):
        return {"forward": ([spec("tokens", "int64", "(batch, time)", "character ids; <bos> (2) first at the start"),
                             *self.state_specs()], [STEP_LOGITS, *self.state_specs()])}

    def example(self, method, lengths, g):
        tokens, _ = random_tokens(lengths, self.vocab, g)
        state = (0.5 * torch.randn(2, self.layers, len(lengths), self.hidden, generator=g)).unbind(0)
        category = (torch.randint(0, self.classes, (len(lengths),), generator=g),) if self.model.conditional else ()
        return (tokens, *category, *state)

    def checks(self, ts, lengths, g):
        *head, h, c = self.example("forward", lengths, g)
        category = head[1] if self.model.conditional else None
        logits, (h1, c1) = self.model.step(head[0], category, (h, c))
        yield "forward", ts(*head, h, c), (logits, h1, c1)
        zeros = torch.zeros_like(h)
        yield "forward from zeros", ts(*head, zeros, zeros)[0], self.model(head[0], None, category)
        if head[0].shape[1] > 1:  # in two pieces, the state carried over
            k = head[0].shape[1] // 2
            cat = head[1:]
            first, h2, c2 = ts(head[0][:, :k], *cat, h, c)
            second, h2, c2 = ts(head[0][:, k:], *cat, h2, c2)
            yield "forward in two pieces", (torch.cat([first, second], 1), h2, c2), (logits, h1, c1)

    def notes(self):
        return {"sampling": "feed <bos> (id 2), then one drawn id at a time with the returned h, c; draw from "
                            "softmax(logits[:, -1] / temperature) with <pad> (0) and <bos> (2) excluded; stop at "
                            "<eos> (3)",
                "state": {"layers": self.layers, "hidden": self.hidden}}


class ConditionalCharGenerator(CharGenerator):
    """``forward(tokens, category, h, c)``: a conditional ``CharLSTM``'s step."""

    def forward(self, tokens: torch.Tensor, category: torch.Tensor, h: torch.Tensor, c: torch.Tensor
                ) -> tuple[torch.Tensor, ...]:
        logits, (h, c) = self.model.step(tokens, category, (h, c))
        return logits, h, c

    def methods(self):
        (inputs, outputs), = super().methods().values()
        category = spec("category", "int64", "(batch,)", "index into `labels` of the category to imitate")
        return {"forward": ([inputs[0], category, *inputs[1:]], outputs)}


MOLECULE_SAMPLING = ("feed <bos> (id 2), then one drawn id at a time; draw from softmax(logits[:, -1] / "
                     "temperature) (temperature 0: argmax) with <pad> (0), <unk> (1) and <bos> (2) excluded; "
                     "stop at <eos> (3)")


class MoleculeModel(Exported):
    """Shared by the SMILES generators: ``forward(tokens, lengths)`` gives teacher-forced logits."""

    def greedy(self, step, z: torch.Tensor) -> Check:
        """Ids decoded greedily by ``step`` (a ``autoregress`` step over the export) next to ``generate``'s."""
        steps = min(self.model.max_len, 12)
        ids = autoregress(step, len(z), steps, temperature=0.0, generator=None, device=z.device)
        return "greedy decoding", ids, self.model.generate(z, temperature=0.0, max_len=steps)

    def logits_spec(self) -> dict:
        return spec("logits", "float32", "(batch, time - 1, vocab)", "teacher-forced scores of tokens[:, 1:]")


class SmilesVAEExport(MoleculeModel):
    def __init__(self, model: SmilesVAE, meta: dict):
        super().__init__(model, meta)
        self.hidden, self.latent = model.decoder.hidden_size, model.latent

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(tokens, lengths)
        return out["logits"], out["mu"], out["logvar"]

    def encode(self, tokens: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.encode(tokens, lengths)

    def initial_state(self, z: torch.Tensor) -> torch.Tensor:
        return self.model.initial_state(z)

    def decode(self, tokens: torch.Tensor, z: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.decode(tokens, z, h)

    def methods(self):
        mu = spec("mu", "float32", "(batch, latent)", "posterior mean: the molecule's code")
        logvar = spec("logvar", "float32", "(batch, latent)", "posterior log-variance")
        z = spec("z", "float32", "(batch, latent)", "a code: mu, or a draw from the prior N(0, I)")
        h = spec("h", "float32", "(1, batch, hidden)", "decoder state: initial_state(z), then the one returned")
        return {"forward": ([MOLECULE, LENGTHS], [self.logits_spec(), mu, logvar]),
                "encode": ([MOLECULE, LENGTHS], [mu, logvar]),
                "initial_state": ([z], [h]),
                "decode": ([spec("tokens", "int64", "(batch, time)", "decoder inputs: <bos> ..., or one id"), z, h],
                           [STEP_LOGITS, h])}

    def example(self, method, lengths, g):
        tokens, lengths_ = random_tokens(lengths, self.vocab, g)
        z = torch.randn(len(lengths), self.latent, generator=g)
        if method == "initial_state":
            return (z,)
        if method == "decode":
            return tokens, z, torch.randn(1, len(lengths), self.hidden, generator=g)
        return tokens, lengths_

    def checks(self, ts, lengths, g):
        tokens, lengths_ = self.example("forward", lengths, g)
        if tokens.shape[1] > 1:  # <bos> and at least <eos>
            out = self.model(tokens, lengths_)
            yield "forward", ts(tokens, lengths_), (out["logits"], out["mu"], out["logvar"])
        yield "encode", ts.encode(tokens, lengths_), self.model.encode(tokens, lengths_)
        _, z, h = self.example("decode", lengths, g)
        yield "decode", ts.decode(tokens, z, h), self.model.decode(tokens, z, h)
        yield "decode from initial_state", ts.decode(tokens, z, ts.initial_state(z)), self.model.decode(tokens, z)

        def step(token, h):
            logits, h = ts.decode(token, z, ts.initial_state(z) if h is None else h)
            return logits[:, -1], h

        yield self.greedy(step, z)

    def notes(self):
        return {"sampling": MOLECULE_SAMPLING + ", with decode(token, z, h) from h = initial_state(z)",
                "prior": {"kind": "normal", "mean": 0.0, "std": 1.0, "latent": self.latent}}


class CharRNNExport(MoleculeModel):
    def __init__(self, model: CharRNN, meta: dict):
        super().__init__(model, meta)
        self.layers, self.hidden = model.lstm.num_layers, model.lstm.hidden_size

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.model(tokens, lengths)["logits"]

    def decode(self, tokens: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, ...]:
        logits, (h, c) = self.model.step(tokens, (h, c))
        return logits, h, c

    def methods(self):
        state = [spec(n, "float32", "(layers, batch, hidden)", f"LSTM {n} state: zeros at <bos>, then the one "
                                                                 f"returned") for n in ("h", "c")]
        return {"forward": ([MOLECULE, LENGTHS], [self.logits_spec()]),
                "decode": ([spec("tokens", "int64", "(batch, time)", "inputs: <bos> ..., or one id"), *state],
                           [STEP_LOGITS, *state])}

    def example(self, method, lengths, g):
        tokens, lengths_ = random_tokens(lengths, self.vocab, g)
        if method == "decode":
            return (tokens, *(0.5 * torch.randn(2, self.layers, len(lengths), self.hidden, generator=g)).unbind(0))
        return tokens, lengths_

    def checks(self, ts, lengths, g):
        tokens, lengths_ = self.example("forward", lengths, g)
        zeros = torch.zeros(self.layers, len(lengths), self.hidden)
        if tokens.shape[1] > 1:
            want = self.model(tokens, lengths_)["logits"]
            yield "forward", ts(tokens, lengths_), want
            yield "decode from zeros", ts.decode(tokens[:, :-1], zeros, zeros)[0], want
        _, h, c = self.example("decode", lengths, g)
        logits, (h1, c1) = self.model.step(tokens, (h, c))
        yield "decode", ts.decode(tokens, h, c), (logits, h1, c1)

        def step(token, state):
            logits, h, c = ts.decode(token, *(state or (zeros, zeros)))
            return logits[:, -1], (h, c)

        yield self.greedy(step, torch.zeros(len(lengths), 0))

    def notes(self):
        return {"sampling": MOLECULE_SAMPLING + ", with decode(token, h, c) from zero states",
                "state": {"layers": self.layers, "hidden": self.hidden}}


class DenseAEExport(MoleculeModel):
    def __init__(self, model: DenseAE, meta: dict):
        super().__init__(model, meta)
        self.positions, self.latent = model.positions, model.latent

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.model.decode(self.encode(tokens, lengths))[:, : tokens.shape[1] - 1]

    def encode(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.model.encode(tokens, lengths)[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.model.decode(z)

    def methods(self):
        z = spec("z", "float32", "(batch, latent)", "a code: encode's, or a draw from the prior")
        return {"forward": ([MOLECULE, LENGTHS], [self.logits_spec()]),
                "encode": ([MOLECULE, LENGTHS], [z]),
                "decode": ([z], [spec("logits", "float32", "(batch, max_len + 1, vocab)",
                                      "scores of each position's token (after <bos>)")])}

    def example(self, method, lengths, g):
        lengths = [min(n, self.positions + 1) for n in lengths]  # <bos> + the model's positions
        if method == "decode":
            return (torch.randn(len(lengths), self.latent, generator=g),)
        return random_tokens(lengths, self.vocab, g)

    def checks(self, ts, lengths, g):
        tokens, lengths_ = self.example("forward", lengths, g)
        if tokens.shape[1] > 1:
            yield "forward", ts(tokens, lengths_), self.model(tokens, lengths_)["logits"]
        yield "encode", ts.encode(tokens, lengths_), self.model.encode(tokens, lengths_)[0]
        (z,) = self.example("decode", lengths, g)
        yield "decode", ts.decode(z), self.model.decode(z)
        logits = ts.decode(z)
        ids = until_eos(torch.stack([sample_step(logits[:, i], 0.0, None) for i in range(self.positions)], 1))
        yield "greedy decoding", ids, self.model.generate(z, temperature=0.0)

    def notes(self):
        mean, std = self.model.code_mean.tolist(), self.model.code_std.tolist()
        return {"sampling": "one draw per position from softmax(decode(z)[:, i] / temperature) (temperature 0: "
                            "argmax) with <pad> (0), <unk> (1) and <bos> (2) excluded; the molecule ends at the first "
                            "<eos> (3)",
                "prior": {"kind": "normal", "mean": mean, "std": std, "latent": self.latent,
                          "note": "fitted to the training molecules' codes"}}


def exported(model: nn.Module, meta: dict) -> Exported:
    """The traceable wrapper of a checkpoint's model."""
    if isinstance(model, SmilesVAE):
        return SmilesVAEExport(model, meta)
    if isinstance(model, CharRNN):
        return CharRNNExport(model, meta)
    if isinstance(model, DenseAE):
        return DenseAEExport(model, meta)
    if isinstance(model, CharLSTM):
        return (ConditionalCharGenerator if model.conditional else CharGenerator)(model, meta)
    if meta["task"] == "entity":
        return EntityClassifier(model, meta)
    if meta["task"] == "classify":
        return Classifier(model, meta)
    raise SeqlabError(f"seqlab cannot export a {meta['model']['name']!r} model ({type(model).__name__})")


@contextmanager
def quiet_tracing() -> Iterator[None]:
    """Hide torch's warnings while tracing. torch 2.13 deprecates ``torch.jit`` (trace, save, load) for
    ``torch.export``; TorchScript still works, and it keeps all of a model's methods in one file that
    ``torch.jit.load`` alone opens, so the warning would only puzzle the user. Tracer warnings (a shape
    read as a Python number) are hidden too: the written file is checked on other shapes instead."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        yield


def max_difference(got: Outputs, want: Outputs) -> float:
    """Largest difference beyond tolerance between two outputs (0 when they agree; inf for another shape)."""
    got, want = (got,) if isinstance(got, torch.Tensor) else got, (want,) if isinstance(want, torch.Tensor) else want
    if len(got) != len(want) or any(a.shape != b.shape for a, b in zip(got, want)):
        return float("inf")
    worst = 0.0
    for a, b in zip(got, want):
        a, b = a.double(), b.double()
        if not torch.allclose(a, b, rtol=ATOL, atol=ATOL):
            worst = max(worst, float((a - b).abs().max()))
    return worst


def check(wrapper: Exported, ts: torch.jit.ScriptModule, name: str) -> None:
    """Refuse an export whose methods do not give seqlab's outputs on :data:`CHECK_LENGTHS`."""
    g = torch.Generator().manual_seed(1)
    for lengths in CHECK_LENGTHS:
        for what, got, want in wrapper.checks(ts, lengths, g):
            diff = max_difference(got, want)
            if diff:
                raise SeqlabError(f"the TorchScript export of {name!r} does not reproduce the model ({what} differs "
                                  f"by {diff:.3g} on a batch of lengths {lengths}); nothing was written")


def write_torchscript(model: nn.Module, meta: dict, folder: Path) -> dict:
    """``model.pt`` (traced, then checked from the file) and what ``export.json`` says of it."""
    wrapper = exported(model, meta).eval()
    methods = wrapper.methods()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad(), quiet_tracing():
        inputs = {m: wrapper.example(m, TRACE_LENGTHS, g) for m in methods}
        traced = torch.jit.trace_module(wrapper, inputs, check_trace=False)
        torch.jit.save(traced, str(folder / "model.pt"))
        check(wrapper, torch.jit.load(str(folder / "model.pt"), map_location="cpu"), meta["model"]["name"])
    return {"format": "torchscript", "file": "model.pt",
            "load": "torch.jit.load('model.pt', map_location='cpu'), then call its methods under torch.no_grad()",
            "device": "cpu",
            "methods": {m: {"inputs": i, "outputs": o} for m, (i, o) in methods.items()},
            "checked": CHECKED, **wrapper.notes()}


def write_huggingface(model: nn.Module, tokenizer, meta: dict, folder: Path) -> dict:
    """A ``save_pretrained`` folder (:func:`seqlab.models.bert.export_pretrained`), checked with ``transformers``."""
    from transformers import AutoModelForSequenceClassification

    from seqlab.models.bert import _quiet_loading, export_pretrained

    entity = isinstance(model, SentenceMiniLM)
    export_pretrained(model.base if entity else model, tokenizer, folder, meta["labels"])
    with _quiet_loading():
        hf = AutoModelForSequenceClassification.from_pretrained(folder, local_files_only=True).eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for lengths in CHECK_LENGTHS:
            tokens, lengths_ = random_tokens(lengths, int(meta["vocab_size"]), g)
            mask = (torch.arange(tokens.shape[1])[None, :] < lengths_[:, None]).long()
            if entity:
                spans = random_spans(lengths_, g)
                pos = torch.arange(tokens.shape[1])[None, :]
                types = ((pos >= spans[:, :1]) & (pos < spans[:, 1:])).long()
                got = hf(input_ids=tokens, attention_mask=mask, token_type_ids=types).logits
                want = model(tokens, lengths_, spans)["logits"]
            else:
                got, want = hf(input_ids=tokens, attention_mask=mask).logits, model(tokens, lengths_)
            diff = max_difference(got, want)
            if diff:
                raise SeqlabError(f"the Hugging Face export of {meta['model']['name']!r} does not reproduce the model "
                                  f"(logits differ by {diff:.3g} on lengths {lengths}); nothing was written")
    inputs = [spec("input_ids", "int64", "(batch, time)", "WordPiece ids from the folder's tokenizer, [CLS] ... [SEP]"),
              spec("attention_mask", "int64", "(batch, time)", "1 on real tokens, 0 on padding")]
    if entity:
        inputs.append(spec("token_type_ids", "int64", "(batch, time)", "1 on the mention's word pieces, else 0"))
    info = {"format": "huggingface", "file": "model.safetensors",
            "load": "transformers.AutoModelForSequenceClassification.from_pretrained(folder) and "
                    "transformers.AutoTokenizer.from_pretrained(folder)",
            "methods": {"forward": {"inputs": inputs, "outputs": [
                spec("logits", "float32", "(batch, classes)", "class scores; config.id2label names them")]}},
            "checked": CHECKED}
    base = model.base if entity else model
    if getattr(base, "window", 0):
        info["windows"] = (f"seqlab reads a text longer than {base.window} word pieces as windows of {base.window} "
                           f"([CLS] ... [SEP]), one starting every {base.stride} pieces of text, and averages their "
                           f"logits; call this model on each window and do the same")
    return info


def tokenizer_section(tokenizer, meta: dict, folder: Path, hf: bool) -> dict:
    """Write the tokenizer files next to the model; what ``export.json`` says of them."""
    section = {"kind": tokenizer.to_dict().get("kind"), "max_len": meta.get("max_len", tokenizer.max_len)}
    if hf:
        return {**section, "files": ["tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"],
                "load": "transformers.AutoTokenizer.from_pretrained(folder)"}
    section["files"] = sorted(tokenizer_files(tokenizer, folder))  # a Hugging Face tokenizer.json where it can be one
    if "tokenizer.json" in section["files"]:
        section["load"] = "tokenizers.Tokenizer.from_file('tokenizer.json'): the same ids as seqlab"
    section["seqlab_tokenizer.json"] = "seqlab's own schema: `vocab` lists the tokens, a token's id is its position"
    if section["kind"] == "ngrams":
        section["ids"] = ("a text's input is the ids of its n-grams, sorted, each repeated as often as it occurs: "
                          "sklearn CountVectorizer(analyzer, ngram_range, lowercase=True, vocabulary=vocab[1:]) counts, "
                          "id = column + 1; a text with none is [0]")
    if section["kind"] == "mention-ngrams":
        section["ids"] = ("a mention's input is the sorted, repeated ids of its own n-grams (mention_vocab: "
                          "CountVectorizer(analyzer, ngram_range), id = column + 1) followed by those of the word 1-2-"
                          "grams of its context_words words either side, the mention written 'xmentionx' "
                          "(context_vocab, id = len(mention_vocab) + column); a mention with none is [0]")
    if section["kind"] == "selfies":
        section["ids"] = ("a molecule's tokens are its SELFIES symbols, selfies.split_selfies(selfies.encoder(smiles)) "
                          "(the selfies package, 2.2); generated symbols joined, selfies.decoder(...) gives the SMILES")
    if meta["task"] in ("generate", "molecule"):
        section["special_ids"] = {token: i for i, token in enumerate(tokenizer.vocab[:4])}  # <pad> <unk> <bos> <eos>
    return section


def check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise SeqlabError(f"{out} exists and is not a folder; give a new or empty folder to export into")
    if out.is_dir() and any(out.iterdir()):
        raise SeqlabError(f"{out} is not empty; give a new or empty folder to export into")


def export(checkpoint_dir: Path, out: Path) -> dict:
    """Write the checkpoint at ``checkpoint_dir`` into the new (or empty) folder ``out`` in a form that loads
    without seqlab, checked against the model first; returns ``export.json``'s content and ``path``.

    The files appear in ``out`` only once complete and checked (written next to it, then renamed)."""
    out = Path(out)
    check_out(out)
    model, tokenizer, meta = checkpoint.load_model(Path(checkpoint_dir))
    name = meta["model"]["name"]
    hf = isinstance(model, (MiniLMClassifier, SentenceMiniLM))  # transformers inside
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        fmt = write_huggingface(model, tokenizer, meta, tmp) if hf else write_torchscript(model, meta, tmp)
        info = {"model": name, "task": meta["task"], "labels": meta["labels"], **fmt,
                "tokenizer": tokenizer_section(tokenizer, meta, tmp, hf),
                "options": meta["model"].get("kwargs", {}), "vocab_size": meta["vocab_size"],
                "source": {"data": meta.get("data", {}).get("name"), "epoch": meta.get("epoch"),
                           "metrics": meta.get("metrics", {})},
                "seqlab_version": __version__, "torch_version": torch.__version__.split("+")[0]}
        features = meta.get("data", {}).get("features")
        if features:
            info["features"] = {**features, "note": "seqlab.data.features.mention_features, then (x - mean) / std"}
        (tmp / "export.json").write_text(json.dumps(info, indent=2))
        check_out(out)  # still free
        if out.is_dir():
            out.rmdir()
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {**info, "path": str(out)}
