"""Inference from a checkpoint folder, without Ray: used by ``seqlab predict``, evaluation and Serve."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from seqlab import checkpoint
from seqlab.errors import SeqlabError
from seqlab.tasks import EncodedSplit, label_ids, make_task
from seqlab.train import bucket_batches, evaluate_stats


def model_label(card: dict, model: str) -> str:
    """``<dataset>[-<category>]-<model>``: how a trained model is named (Serve, a search's results folder)."""
    keep = card.get("keep_labels") or []
    return "-".join([card["name"], *(keep if len(keep) == 1 else []), model]).lower().replace(" ", "-")


class Predictor:
    """A checkpoint's model, tokenizer and task; ``evaluate`` works for every task."""

    def __init__(self, path: str | Path, device: str = "cpu"):
        self.model, self.tokenizer, self.meta = checkpoint.load_model(Path(path), device=device)
        self.labels: list[str] = self.meta["labels"]
        self.task = make_task(self.meta["task"], len(self.labels))
        self.device = torch.device(device)

    @property
    def max_len(self) -> int:
        """Tokens per input, as in training."""
        return self.meta.get("max_len", self.tokenizer.max_len)

    @property
    def name(self) -> str:
        return model_label(self.meta["data"], self.meta["model"]["name"])

    def encode(self, frame: pd.DataFrame | list[str], labels: list[str] | None = None) -> EncodedSplit:
        """Texts, or a frame's rows (``text``; entity models: + ``start``, ``end``), as the task's sequences."""
        if not isinstance(frame, pd.DataFrame):
            frame = pd.DataFrame({"text": list(frame)})
        y = label_ids(labels, self.labels) if labels is not None else np.zeros(len(frame), np.int64)
        features = None
        spec = self.meta["data"].get("features")
        if spec:  # LSTM+CA+feat: the same features, standardised with the training split's statistics
            from seqlab.features import mention_features

            raw = mention_features(frame["text"].tolist(), frame["start"].to_numpy(), frame["end"].to_numpy())
            features = (raw - np.asarray(spec["mean"], np.float32)) / np.asarray(spec["std"], np.float32)
        return self.task.encode_frame(self.tokenizer, frame, y, features=features, max_len=self.max_len)

    def evaluate(self, frame: pd.DataFrame) -> dict:
        """The task's metrics on a frame with ``text`` and ``label`` columns (classify: + per-class F1)."""
        unknown = sorted(set(frame["label"]) - set(self.labels))
        if unknown:
            raise SeqlabError(f"labels not known to the model: {unknown[:5]}")
        split = self.encode(frame, frame["label"].tolist())
        stats = evaluate_stats(self.model, split, self.task, device=self.device)
        return {**self.task.summarise(stats), **self.task.details(stats, self.labels), "n": int(len(frame))}

    @torch.no_grad()
    def outputs(self, frame: pd.DataFrame, batch_size: int = 128):
        """Per row, in the order of ``frame``: the model's output dict (entity models) or logits."""
        split = self.encode(frame)
        for idx in bucket_batches(split.lengths, batch_size, shuffle=False, pad_to_equal=False):
            b = {k: v.to(self.device) for k, v in self.task.collate(split, idx).items()}
            yield split, idx, self.task.forward(self.model, b)

    def probabilities(self, texts: list[str] | pd.DataFrame, batch_size: int = 128) -> np.ndarray:
        """(n, num_classes) class probabilities, in the order of ``texts`` (classifiers)."""
        frame = texts if isinstance(texts, pd.DataFrame) else pd.DataFrame({"text": list(texts)})
        probs = np.zeros((len(frame), len(self.labels)), dtype=np.float32)
        for _, idx, out in self.outputs(frame, batch_size):
            logits = out["logits"] if isinstance(out, dict) else out
            probs[idx] = torch.softmax(logits.float(), -1).cpu().numpy()
        return probs


class TextClassifier(Predictor):
    def __init__(self, path: str | Path, device: str = "cpu"):
        super().__init__(path, device)
        if self.meta["task"] != "classify":
            kind = {"generate": "text generator", "entity": "entity-mention classifier (it needs spans)"}
            raise SeqlabError(f"{path} holds a {self.meta['model']['name']} {kind[self.meta['task']]}, not a text "
                              f"classifier")

    def predict(self, texts: list[str]) -> list[dict]:
        probs = self.probabilities(texts)
        return [{"label": self.labels[int(p.argmax())],
                 "probabilities": {lab: round(float(q), 6) for lab, q in zip(self.labels, p)}} for p in probs]


class TextGenerator(Predictor):
    def __init__(self, path: str | Path, device: str = "cpu"):
        super().__init__(path, device)
        if self.meta["task"] != "generate":
            raise SeqlabError(f"{path} holds a {self.meta['model']['name']} classifier, not a text generator")

    @property
    def conditional(self) -> bool:
        return bool(self.meta["model"]["kwargs"].get("conditional"))

    def generate(self, *, category: str | None = None, prompt: str = "", length: int = 300,
                 temperature: float = 0.5, n: int = 1, seed: int = 0) -> list[str]:
        """``n`` texts of up to ``length`` new characters; ``category`` is required by a conditional model."""
        from seqlab.models.charlm import sample

        index = None
        if category is not None:
            if category not in self.labels:
                raise SeqlabError(f"unknown category {category!r}; this model knows {', '.join(self.labels)}")
            index = self.labels.index(category)
        elif self.conditional:
            raise SeqlabError(f"this model is conditional: give a category, one of {', '.join(self.labels)}")
        return sample(self.model, self.tokenizer, n=n, length=length, temperature=temperature, prompt=prompt,
                      category=index if self.conditional else None, seed=seed, device=self.device)


class EntityClassifier(Predictor):
    """An entity-mention model: each mention's label, probabilities and, for LSTM+CA, the attention
    its context words got."""

    def __init__(self, path: str | Path, device: str = "cpu"):
        super().__init__(path, device)
        if self.meta["task"] != "entity":
            raise SeqlabError(f"{path} holds a {self.meta['model']['name']} model, not an entity classifier")

    def predict(self, frame: pd.DataFrame) -> list[dict]:
        """Rows ``text`` (the sentence), ``start``, ``end`` -> one result per row."""
        from seqlab.tasks import encode_mention

        results: list[dict] = [{} for _ in range(len(frame))]
        for split, idx, out in self.outputs(frame):
            probs = torch.softmax(out["logits"].float(), -1).cpu().numpy()
            attention = out.get("context_attention")
            for row, i in enumerate(idx):
                p = probs[row]
                results[i] = {"label": self.labels[int(p.argmax())],
                              "probabilities": {lab: round(float(q), 6) for lab, q in zip(self.labels, p)}}
                if attention is not None:
                    text, a, b = frame["text"].iloc[i], int(frame["start"].iloc[i]), int(frame["end"].iloc[i])
                    words, s, e = encode_mention(self.tokenizer, text, a, b, self.max_len, words=True)
                    weights = attention[row, : len(words)].float().cpu().numpy()
                    results[i]["attention"] = [{"token": w, "weight": round(float(x), 4), "mention": s <= k < e}
                                               for k, (w, x) in enumerate(zip(words, weights))]
        return results


class MoleculeGenerator(Predictor):
    """A SMILES generator (``smiles-vae``, ``smiles-ae``, ``smiles-rnn``): sample, encode, decode, and
    explore a molecule's neighbourhood in latent space."""

    def __init__(self, path: str | Path, device: str = "cpu"):
        super().__init__(path, device)
        if self.meta["task"] != "molecule":
            raise SeqlabError(f"{path} holds a {self.meta['model']['name']} model, not a molecule generator")

    @property
    def latent_size(self) -> int:
        return int(self.model.latent)

    def sample(self, n: int, *, temperature: float = 1.0, seed: int = 0) -> list[str]:
        from seqlab.models.molecule import sample_smiles

        return sample_smiles(self.model, self.tokenizer, n=n, seed=seed, temperature=temperature)

    def encode_smiles(self, smiles: list[str]) -> np.ndarray:
        """(n, latent) posterior means of canonical SMILES (check them with :func:`seqlab.chem.parse_error`)."""
        if not self.latent_size:
            raise SeqlabError(f"model {self.meta['model']['name']!r} has no latent space; a VAE "
                              f"(smiles-vae) or the autoencoder (smiles-ae) has")
        unknown = sorted({t for s in smiles for t in self.tokenizer.words(s) if t not in self.tokenizer.index})
        if unknown:
            raise SeqlabError(f"token {unknown[0]!r} never occurred in the training molecules; the model cannot "
                              f"encode it (known tokens: {' '.join(self.tokenizer.vocab[4:])})")
        split = self.encode(smiles)
        z = np.zeros((len(smiles), self.latent_size), np.float32)
        with torch.no_grad():
            for idx in bucket_batches(split.lengths, 256, shuffle=False, pad_to_equal=False):
                b = self.task.collate(split, idx)
                z[idx] = self.model.encode(b["tokens"].to(self.device), b["lengths"].to(self.device))[0].cpu().numpy()
        return z

    def decode(self, z: np.ndarray, *, temperature: float = 0.0, seed: int = 0) -> list[str]:
        """SMILES of latent vectors; temperature 0 decodes greedily."""
        from seqlab.models.molecule import sample_smiles

        z = torch.as_tensor(np.asarray(z, np.float32).reshape(-1, self.latent_size))
        return sample_smiles(self.model, self.tokenizer, n=len(z), z=z, seed=seed, temperature=temperature)

    def neighbours(self, smiles: str, *, n: int = 10, radius: float = 0.5, seed: int = 0) -> list[dict]:
        """Distinct valid molecules decoded from ``n`` points drawn around the molecule's code
        (a Gaussian of std ``radius``), nearest first, with Tanimoto similarity to it."""
        from seqlab import chem

        z = self.encode_smiles([smiles])
        g = np.random.default_rng(seed)
        points = z + radius * g.standard_normal((n, self.latent_size)).astype(np.float32)
        decoded = self.decode(points)
        distance = np.linalg.norm(points - z, axis=1)
        out, seen = [], {chem.canonical(smiles)}
        for i in np.argsort(distance):
            c = chem.canonical(decoded[i]) if decoded[i] else None
            if c is None or c in seen:
                continue
            seen.add(c)
            out.append({"smiles": c, "distance": round(float(distance[i]), 4),
                        "similarity": round(chem.tanimoto(smiles, c), 4)})
        return out

    def evaluate(self, frame: pd.DataFrame, *, samples: int = 1000, reconstruct: int = 1000) -> dict:
        """ELBO terms on ``frame``; reconstruction of its first ``reconstruct`` molecules (greedy,
        from the posterior mean); validity and uniqueness of ``samples`` sampled molecules."""
        from seqlab import chem

        out = super().evaluate(frame)
        if self.latent_size and reconstruct:
            originals = frame["text"].head(reconstruct).tolist()
            out["reconstruction"] = chem.reconstruction(originals, self.decode(self.encode_smiles(originals)))
        if samples:
            smiles = self.sample(samples)
            out["valid"], out["unique"] = chem.validity(smiles), chem.uniqueness(smiles, None)
        return out


PREDICTORS = {"classify": TextClassifier, "generate": TextGenerator, "entity": EntityClassifier,
              "molecule": MoleculeGenerator}


def load_predictor(path: str | Path, device: str = "cpu") -> Predictor:
    """The predictor of the checkpoint's task, with the methods that task serves."""
    return PREDICTORS[checkpoint.read_meta(path).get("task", "classify")](path, device)


def recognisability(classifier: TextClassifier, generated: dict[str, list[str]]) -> dict:
    """How often a classifier of real texts names the category each generated text imitates (seed 000)."""
    texts = [t for ts in generated.values() for t in ts]
    truth = [c for c, ts in generated.items() for _ in ts]
    pred = [classifier.labels[i] for i in classifier.probabilities(texts).argmax(-1)] if texts else []
    hits = [p == t for p, t in zip(pred, truth)]
    per_category = {c: float(np.mean([h for h, t in zip(hits, truth) if t == c])) for c in generated if generated[c]}
    return {"accuracy": float(np.mean(hits)) if hits else 0.0, "correct": int(sum(hits)), "n": len(hits),
            "per_category": per_category, "predicted": pred}
