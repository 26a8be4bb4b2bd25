"""``molecule``: generative models of SMILES (write-up 004). Training side, predictor, and the
routes that sample, encode, decode and explore a molecule's neighbourhood."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from pydantic import BaseModel, Field

from seqlab import chem
from seqlab.errors import BadInput, SeqlabError
from seqlab.models.molecule import sample_smiles
from seqlab.modules.losses import elbo_loss, kl_terms
from seqlab.tasks import Context, Task
from seqlab.tasks.batches import bucket_batches
from seqlab.tasks.encoding import EncodedSplit, pad_rows, spelled_split
from seqlab.tasks.predictor import Predictor
from seqlab.tokenizers.selfies import SelfiesTokenizer
from seqlab.tokenizers.smiles import SmilesTokenizer

# ---- serving -----------------------------------------------------------------------------------


class Molecule(BaseModel):
    smiles: str
    valid: bool = Field(description="RDKit parses it")
    svg: str | None = Field(None, description="RDKit drawing (when the request asked for svg)")


class SampleRequest(BaseModel):
    n: int = Field(10, ge=1, le=1000, description="molecules to sample")
    temperature: float = Field(1.0, gt=0, le=5, description="sampling temperature")
    seed: int = Field(0, ge=0, description="random seed; the same request and seed give the same molecules")
    svg: bool = Field(False, description="add an SVG drawing of every valid molecule")


class MoleculesResponse(BaseModel):
    model: str
    molecules: list[Molecule]
    valid_fraction: float


STANDARDIZE = ("standardise each molecule first, so that a salt, a charged form or a stereo-isomer of a drug "
               "reaches a model whose alphabet lacks them (MOSES: no salts, charges, stereo or isotopes): keep "
               "the largest fragment, neutralise charges, and drop stereo and isotope labels where the model has "
               "no tokens for them; the answer's standardized says what changed. Off: the molecule as sent")


class Standardized(BaseModel):
    input: str = Field(description="the SMILES as sent")
    smiles: str = Field(description="the standardised, RDKit-canonical SMILES the model read")
    changes: list[str] = Field(description="what standardisation changed, in words, e.g. \"kept the largest "
                                           "fragment (dropped 'Cl')\", \"neutralised charges\", \"removed stereo "
                                           "(1 centre)\"; empty when nothing but the atom order did")


class EncodeRequest(BaseModel):
    smiles: list[str] = Field(description="molecules to encode", examples=[["CCO", "c1ccccc1O"]])
    standardize: bool = Field(False, description=STANDARDIZE)


class EncodeResponse(BaseModel):
    model: str
    latent_size: int
    latents: list[list[float]]
    canonical: list[str] = Field(description="the SMILES each latent encodes (canonical; standardised when asked)")
    standardized: list[Standardized] | None = Field(
        None, description="with standardize: one item per molecule, in request order; absent otherwise")


class DecodeRequest(BaseModel):
    latents: list[list[float]] = Field(description="latent vectors, each of the model's latent size")
    temperature: float = Field(0.0, ge=0, le=5, description="0 decodes greedily")
    seed: int = Field(0, ge=0)
    svg: bool = Field(False, description="add an SVG drawing of every valid molecule")


class NeighboursRequest(BaseModel):
    smiles: str = Field(description="the molecule to start from", examples=["CC(=O)Oc1ccccc1C(=O)O"])
    n: int = Field(20, ge=1, le=200, description="points drawn around its latent code")
    radius: float = Field(0.5, gt=0, le=10, description="standard deviation of the points around the code")
    seed: int = Field(0, ge=0)
    svg: bool = Field(False, description="add an SVG drawing of every molecule")
    standardize: bool = Field(False, description=STANDARDIZE)


class Neighbour(BaseModel):
    smiles: str
    distance: float = Field(description="latent distance from the query's code")
    similarity: float = Field(description="Tanimoto similarity to the query (Morgan fingerprints)")
    svg: str | None = None


class NeighboursResponse(BaseModel):
    model: str
    query: str = Field(description="the SMILES whose neighbourhood was explored (canonical; standardised when asked)")
    neighbours: list[Neighbour]
    standardized: Standardized | None = Field(None, description="with standardize: what changed; absent otherwise")


class OptimizeRequest(BaseModel):
    objective: str = Field("qed", description="what to maximise: qed (RDKit's drug-likeness, 0..1), logp (Crippen), "
                                              "or a weighted sum such as 'qed=1,logp=0.1'")
    start: str | None = Field(None, description="a molecule to start from (its latent code); none: the prior",
                              examples=["CC(=O)Oc1ccccc1C(=O)O"])
    min_similarity: float = Field(0.0, ge=0, le=1, description="with start: only molecules at least this Tanimoto-"
                                                               "similar to it count (Morgan fingerprints)")
    budget: int = Field(512, ge=16, le=4096, description="latent points decoded in all")
    n: int = Field(10, ge=1, le=100, description="best distinct molecules to return")
    seed: int = Field(0, ge=0, description="random seed; the same request and seed give the same molecules")
    svg: bool = Field(False, description="add an SVG drawing of every molecule")
    standardize: bool = Field(False, description=STANDARDIZE)


class Optimized(BaseModel):
    smiles: str = Field(description="canonical SMILES")
    score: float = Field(description="the objective's weighted sum")
    properties: dict[str, float] = Field(description="qed and logp")
    similarity: float | None = Field(None, description="Tanimoto similarity to start (with a start)")
    svg: str | None = None


class OptimizeResponse(BaseModel):
    model: str
    objective: dict[str, float] = Field(description="the weights the score sums")
    start: str | None = Field(None, description="the molecule started from (canonical; standardised when asked)")
    molecules: list[Optimized] = Field(description="the best distinct valid molecules found, best first")
    decoded: int = Field(description="latent points decoded")
    valid_fraction: float = Field(description="share of the decoded points that were valid molecules")
    standardized: Standardized | None = Field(None, description="with standardize: what changed; absent otherwise")


def check_smiles(smiles: list[str], *, max_items: int, max_chars: int, field: str = "smiles") -> list[str]:
    """Canonical forms of the request's molecules; raises ``BadInput`` with RDKit's reason for the first bad one,
    naming it ``field[i]`` (a one-molecule field such as ``start``: ``field``)."""
    if not smiles:
        raise BadInput(422, "smiles is empty; send at least one SMILES string")
    if len(smiles) > max_items:
        raise BadInput(413, f"{len(smiles)} molecules in one request; at most {max_items} are allowed")
    out = []
    for i, s in enumerate(smiles):
        name = field if field != "smiles" else f"smiles[{i}]"
        if len(s) > max_chars:
            raise BadInput(413, f"{name} has {len(s)} characters; at most {max_chars} are allowed")
        why = chem.parse_error(s)
        if why:
            raise BadInput(422, f"{name} {s[:80]!r} is not a valid molecule: {why}")
        out.append(chem.canonical(s))
    return out


def unreadable(tokenizer: SmilesTokenizer | SelfiesTokenizer, smiles: str, max_len: int) -> str | None:
    """Why a model with this tokenizer cannot read ``smiles`` (RDKit-canonical), or None: a token
    (SELFIES: a symbol) outside its alphabet (named, with the alphabet), more tokens than ``max_len``,
    or a molecule SELFIES cannot write."""
    try:
        unknown = tokenizer.unknown(smiles)
    except SeqlabError as exc:  # SELFIES: an atom with more bonds than its grammar allows
        return str(exc)
    if unknown:
        many = len(unknown) > 1
        return (f"token{'s' * many} {', '.join(map(repr, unknown))} never occurred in the training molecules, so "
                f"the model cannot encode {'them' if many else 'it'} (the model's alphabet: "
                f"{' '.join(tokenizer.alphabet)})")
    n = len(tokenizer.words(smiles))
    return f"it has {n} tokens; the model reads at most {max_len}" if n > max_len else None


def standardize_for(tokenizer: SmilesTokenizer | SelfiesTokenizer, smiles: str) -> tuple[str, list[str]]:
    """:func:`seqlab.chem.standardize`, keeping stereo and isotope labels where the tokenizer has tokens for them."""
    return chem.standardize(smiles, keep_stereo=tokenizer.has_stereo, keep_isotopes=tokenizer.has_isotopes)


def readable(model: MoleculeGenerator, sent: list[str], canonical: list[str], names: list[str],
             standardize: bool) -> tuple[list[str], list[dict] | None]:
    """The SMILES the model reads (``canonical``, standardised when asked) and, when asked, what changed
    for each; a 422 naming the first molecule the model cannot read and why (see :func:`unreadable`)."""
    done = [model.standardize(s) for s in canonical] if standardize else [(s, []) for s in canonical]
    for name, raw, (s, _) in zip(names, sent, done):
        why = model.unreadable(s)
        if why and not standardize:
            fixed, changes = model.standardize(s)
            if fixed != s and not model.unreadable(fixed):
                why += f"; with standardize on it would read {fixed!r} ({'; '.join(changes)})"
        if why:
            raise BadInput(422, f"{name} {raw[:80]!r}: {why}")
    report = [{"input": raw, "smiles": s, "changes": c} for raw, (s, c) in zip(sent, done)] if standardize else None
    return [s for s, _ in done], report


def molecules(smiles: list[str], svg: bool) -> dict:
    """``molecules`` (each checked by RDKit, drawn when asked) and the ``valid_fraction``."""
    out = []
    for s in smiles:
        valid = bool(s) and chem.canonical(s) is not None
        out.append({"smiles": s, "valid": valid, **({"svg": chem.svg(s)} if svg and valid else {})})
    return {"molecules": out, "valid_fraction": sum(m["valid"] for m in out) / max(len(out), 1)}



def require_latent(model: MoleculeGenerator, route: str, ctx: Context) -> None:
    if not model.latent_size:
        raise BadInput(404, f"{route} is not served by model {ctx.key!r} "
                            f"({model.meta['model']['name']}): it has no latent space; use molecules/sample")


def sample(model: MoleculeGenerator, request: SampleRequest, ctx: Context) -> dict:
    return molecules(model.sample(request.n, temperature=request.temperature, seed=request.seed), request.svg)


def encode(model: MoleculeGenerator, request: EncodeRequest, ctx: Context) -> dict:
    require_latent(model, "molecules/encode", ctx)
    canonical = check_smiles(request.smiles, max_items=ctx.max_items, max_chars=ctx.max_chars)
    names = [f"smiles[{i}]" for i in range(len(canonical))]
    canonical, report = readable(model, request.smiles, canonical, names, request.standardize)
    z = model.encode_smiles(canonical)
    out = {"latent_size": model.latent_size, "canonical": canonical,
           "latents": [[round(float(v), 6) for v in row] for row in z]}
    return out if report is None else {**out, "standardized": report}


def decode(model: MoleculeGenerator, request: DecodeRequest, ctx: Context) -> dict:
    require_latent(model, "molecules/decode", ctx)
    size = model.latent_size
    if not request.latents:
        raise BadInput(422, f"latents is empty; send at least one vector of {size} numbers")
    if len(request.latents) > ctx.max_items:
        raise BadInput(413, f"{len(request.latents)} latents in one request; at most {ctx.max_items} are allowed")
    for i, z in enumerate(request.latents):
        if len(z) != size:
            raise BadInput(422, f"latents[{i}] has {len(z)} values; this model's latent vectors have {size}")
        if not all(abs(v) < 1e6 for v in z):
            raise BadInput(422, f"latents[{i}] holds a value that is not a finite number below 1e6")
    return molecules(model.decode(request.latents, temperature=request.temperature, seed=request.seed), request.svg)


def neighbours(model: MoleculeGenerator, request: NeighboursRequest, ctx: Context) -> dict:
    require_latent(model, "molecules/neighbours", ctx)
    canonical = check_smiles([request.smiles], max_items=1, max_chars=ctx.max_chars)
    [query], report = readable(model, [request.smiles], canonical, ["smiles"], request.standardize)
    found = model.neighbours(query, n=request.n, radius=request.radius, seed=request.seed)
    if request.svg:
        found = [{**m, "svg": chem.svg(m["smiles"])} for m in found]
    return {"query": query, "neighbours": found, **({"standardized": report[0]} if report else {})}


def optimize(model: MoleculeGenerator, request: OptimizeRequest, ctx: Context) -> dict:
    require_latent(model, "molecules/optimize", ctx)
    objective = chem.parse_objective(request.objective)  # a SeqlabError: a 422 naming the properties
    start, report = None, None
    if request.start is not None:
        canonical = check_smiles([request.start], max_items=1, max_chars=ctx.max_chars, field="start")
        [start], report = readable(model, [request.start], canonical, ["start"], request.standardize)
    elif request.min_similarity > 0:
        raise BadInput(422, "min_similarity needs a start molecule to be similar to")
    out = model.optimize(objective, start=start, min_similarity=request.min_similarity, budget=request.budget,
                         n=request.n, seed=request.seed)
    found = [{**m, "svg": chem.svg(m["smiles"])} for m in out["molecules"]] if request.svg else out["molecules"]
    return {"objective": objective, "start": start, "molecules": found, "decoded": out["decoded"],
            "valid_fraction": out["valid"] / out["decoded"], **({"standardized": report[0]} if report else {})}


# ---- training ----------------------------------------------------------------------------------


class MoleculeGeneration(Task):
    """Generative models of SMILES (:mod:`seqlab.models.molecule`): a row is ``<bos> tokens <eos>``.

    The loss is the negative ELBO per molecule (reconstruction only for the autoencoder and the
    CharRNN). Validation also reports teacher-forced token accuracy and the share of molecules
    whose every token is right; :meth:`sampler` adds what chemists judge a generator by,
    measured with RDKit on molecules sampled at the end of each epoch.
    """

    name, kind, data = "molecule", "molecule generator", "molecules"
    metric, mode = "val_loss", "min"
    size = 6  # length of stats()

    def __init__(self, num_classes: int = 1):
        pass  # molecule data has one label

    def encode_frame(self, tokenizer, frame, labels: np.ndarray, *, max_len: int, features=None) -> EncodedSplit:
        ids, offsets = tokenizer.encode_many(frame["text"])
        lengths = np.diff(offsets) - 2
        if len(lengths) and lengths.max() > max_len:
            i = int(lengths.argmax())
            raise SeqlabError(f"SMILES {frame['text'].iloc[i]!r} has {int(lengths[i])} tokens, more than --max-len "
                              f"{max_len}; raise --max-len")
        return EncodedSplit(ids, offsets, np.zeros(len(offsets) - 1, np.int64))

    def prepare(self, split: EncodedSplit, max_len: int) -> EncodedSplit:
        return split

    def collate(self, split: EncodedSplit, idx: np.ndarray) -> dict[str, torch.Tensor]:
        return {"tokens": torch.from_numpy(pad_rows(split, idx)),
                "targets": torch.from_numpy(pad_rows(split, idx, start=1, fill=-100)),
                "lengths": torch.from_numpy(split.lengths[idx])}

    def forward(self, model, batch):
        return model(batch["tokens"], batch["lengths"])

    def loss(self, out, batch):
        return elbo_loss(out, batch["targets"])

    def stats(self, out, batch) -> torch.Tensor:
        # [reconstruction nats, KL nats, predicted tokens, right tokens, molecules, all-right molecules]
        targets = batch["targets"]
        logits = out["logits"].float()
        recon = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100, reduction="sum")
        real = targets != -100
        right = (logits.argmax(-1) == targets) & real
        kl = kl_terms(out["mu"].float(), out["logvar"].float()).sum() if out.get("mu") is not None else recon * 0
        whole = (right.sum(1) == real.sum(1)).sum()
        return torch.stack([recon.double(), kl.double(), real.sum().double(), right.sum().double(),
                            torch.tensor(len(targets), dtype=torch.float64, device=recon.device), whole.double()])

    def summarise(self, stats: torch.Tensor) -> dict[str, float]:
        recon, kl, tokens, right, mols, whole = (float(x) for x in stats)
        mols = max(mols, 1.0)
        return {"loss": (recon + kl) / mols, "recon": recon / mols, "kl": kl / mols,
                "token_accuracy": right / max(tokens, 1.0), "teacher_forced_exact": whole / mols}

    def sampler(self, tokenizer, train_split: EncodedSplit, n: int) -> Callable[[torch.nn.Module, int], dict] | None:
        """Validity, uniqueness and novelty (against the training molecules) of ``n`` molecules
        sampled from the prior, and their product ``chem_score``, which the search can optimise
        instead of the ELBO; None when ``n`` is 0."""
        if n < 1:
            return None
        # novelty is against the training molecules, compared as the tokenizer writes them: a SELFIES
        # model's 1.6M training rows are not decoded (about 0.5 ms a molecule), its samples are encoded
        known = set(spelled_split(tokenizer, train_split))

        def measure(model: torch.nn.Module, seed: int) -> dict[str, float]:
            smiles = sample_smiles(model, tokenizer, n=n, seed=seed)
            valid, unique = chem.validity(smiles), chem.uniqueness(smiles, None)
            novel = chem.novelty(smiles, known, key=tokenizer.spell)
            return {"valid": valid, "unique": unique, "novelty": novel, "chem_score": valid * unique * novel}

        return measure


# ---- inference ---------------------------------------------------------------------------------


class MoleculeGenerator(Predictor):
    """A SMILES generator (``smiles-vae``, ``smiles-ae``, ``smiles-rnn``): sample, encode, decode, and
    explore a molecule's neighbourhood in latent space."""

    task_name = "molecule"

    @property
    def latent_size(self) -> int:
        return int(self.model.latent)

    def sample(self, n: int, *, temperature: float = 1.0, seed: int = 0) -> list[str]:
        return sample_smiles(self.model, self.tokenizer, n=n, seed=seed, temperature=temperature)

    def unreadable(self, smiles: str) -> str | None:
        """Why the model cannot read canonical ``smiles`` (a token outside its alphabet, too long), or None."""
        return unreadable(self.tokenizer, smiles, self.max_len)

    def standardize(self, smiles: str) -> tuple[str, list[str]]:
        """The molecule standardised for this model's alphabet, and what changed (:func:`seqlab.chem.standardize`)."""
        return standardize_for(self.tokenizer, smiles)

    def encode_smiles(self, smiles: list[str]) -> np.ndarray:
        """(n, latent) posterior means of canonical SMILES (check them with :func:`seqlab.chem.parse_error`
        and :meth:`unreadable`; a molecule the model cannot read is a SeqlabError saying why)."""
        return self.posterior(smiles)[0]

    def posterior(self, smiles: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(n, latent) means and log-variances of q(z|x) for canonical SMILES (the autoencoder's
        log-variances are zeros), checked as :meth:`encode_smiles` checks them."""
        if not self.latent_size:
            raise SeqlabError(f"model {self.meta['model']['name']!r} has no latent space; a VAE "
                              f"(smiles-vae) or the autoencoder (smiles-ae) has")
        for s in smiles:
            why = self.unreadable(s)
            if why:
                raise SeqlabError(f"{s[:80]!r}: {why}")
        split = self.encode(smiles)
        mu, logvar = (np.zeros((len(smiles), self.latent_size), np.float32) for _ in range(2))
        with torch.no_grad():
            for idx in bucket_batches(split.lengths, 256, shuffle=False, pad_to_equal=False):
                b = self.task.collate(split, idx)
                m, lv = self.model.encode(b["tokens"].to(self.device), b["lengths"].to(self.device))
                mu[idx] = m.cpu().numpy()
                if lv is not None:
                    logvar[idx] = lv.cpu().numpy()
        return mu, logvar

    def decode(self, z: np.ndarray, *, temperature: float = 0.0, seed: int = 0) -> list[str]:
        """SMILES of latent vectors; temperature 0 decodes greedily."""
        z = torch.as_tensor(np.asarray(z, np.float32).reshape(-1, self.latent_size))
        return sample_smiles(self.model, self.tokenizer, n=len(z), z=z, seed=seed, temperature=temperature)

    def neighbours(self, smiles: str, *, n: int = 10, radius: float = 0.5, seed: int = 0) -> list[dict]:
        """Distinct valid molecules decoded from ``n`` points drawn around the molecule's code
        (a Gaussian of std ``radius``), nearest first, with Tanimoto similarity to it."""
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

    def optimize(self, objective: dict[str, float], *, start: str | None = None, min_similarity: float = 0.0,
                 budget: int = 512, population: int = 64, n: int = 10, seed: int = 0,
                 method: str = "cem") -> dict:
        """Search the latent space for molecules that score high on ``objective`` (weights of
        :data:`seqlab.chem.PROPERTIES`, summed) with ``budget`` greedy decodes.

        ``method="cem"``, the cross-entropy method: each round decodes ``population`` points drawn
        from a diagonal Gaussian and moves the Gaussian toward the best quarter of them (their mean
        and spread, smoothed). It starts at the prior, N(0, I), or at the code of ``start`` (spread
        0.5). ``method="random"``: every point from the prior, the baseline it is measured against.
        With ``start``, a molecule whose Tanimoto similarity to it is below ``min_similarity`` does
        not count, nor does ``start`` itself. Returns the best ``n`` distinct valid molecules found,
        best first (score, properties, similarity to ``start``), and how many points were decoded,
        how many of them were valid molecules, and how many distinct molecules counted.
        """
        if method not in ("cem", "random"):
            raise SeqlabError(f"method must be cem or random, got {method!r}")
        rng = np.random.default_rng(seed)
        size = self.latent_size
        start = None if start is None else chem.canonical(start)  # once, not per molecule scored
        mean, spread = np.zeros(size), np.ones(size)
        if start is not None and method == "cem":
            mean, spread = self.encode_smiles([start])[0].astype(np.float64), np.full(size, 0.5)
        found: dict[str, dict] = {}
        decoded = valid = 0
        while decoded < budget:
            z = mean + spread * rng.standard_normal((min(population, budget - decoded), size))
            scores = np.full(len(z), -np.inf)
            for i, smiles in enumerate(self.decode(z.astype(np.float32))):
                c = chem.canonical(smiles) if smiles else None
                if c is None:
                    continue
                valid += 1
                if c not in found:
                    found[c] = self._scored(c, objective, start, min_similarity)
                scores[i] = found[c]["score"] if found[c] else -np.inf
            decoded += len(z)
            best = np.argsort(-scores)[: max(2, len(z) // 4)]
            best = best[np.isfinite(scores[best])]
            if method == "cem" and len(best) >= 2:  # smoothed, and never narrower than 0.05
                mean = 0.3 * mean + 0.7 * z[best].mean(0)
                spread = np.maximum(0.3 * spread + 0.7 * z[best].std(0), 0.05)
        counted = sorted((m for m in found.values() if m), key=lambda m: -m["score"])
        return {"molecules": counted[:n], "decoded": decoded, "valid": valid, "counted": len(counted)}

    @staticmethod
    def _scored(smiles: str, objective: dict[str, float], start: str | None, min_similarity: float) -> dict | None:
        """A canonical molecule's score and properties, or None when it does not count (``start``, canonical,
        itself, or less similar to it than ``min_similarity``)."""
        similarity = None
        if start is not None:
            if smiles == start:
                return None
            similarity = chem.tanimoto(start, smiles)
            if similarity < min_similarity:
                return None
        props = chem.properties(smiles)
        return {"smiles": smiles, "score": round(sum(w * props[k] for k, w in objective.items()), 6),
                "properties": {k: round(v, 6) for k, v in props.items()},
                "similarity": None if similarity is None else round(similarity, 4)}

    def evaluate(self, frame: pd.DataFrame, *, samples: int = 1000, reconstruct: int = 1000) -> dict:
        """ELBO terms on ``frame``; reconstruction of its first ``reconstruct`` molecules (greedy,
        from the posterior mean); validity and uniqueness of ``samples`` sampled molecules."""
        out = super().evaluate(frame)
        if self.latent_size and reconstruct:
            originals = frame["text"].head(reconstruct).tolist()
            out["reconstruction"] = chem.reconstruction(originals, self.decode(self.encode_smiles(originals)))
        if samples:
            smiles = self.sample(samples)
            out["valid"], out["unique"] = chem.validity(smiles), chem.uniqueness(smiles, None)
        return out


MoleculeGeneration.predictor = MoleculeGenerator
