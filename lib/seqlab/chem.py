"""Molecule quality metrics with RDKit: validity, uniqueness, novelty, diversity, FCD; standardisation; drawing.

Validity, unique@k, novelty and internal diversity follow MOSES (molsets 0.3.1,
``moses/metrics/metrics.py``), so figures compare with published MOSES tables. The Fréchet
ChemNet Distance runs the ChemNet weights shipped in the fcd_torch 1.0.7 wheel, rebuilt here
the way fcd_torch rebuilds them; the MOSES test-set statistics come from the molsets wheel.
Neither package is installed or imported: both wheels are sha256-pinned artifacts, the
weights are read with ``weights_only=True`` and the statistics with an unpickler that only
rebuilds numpy arrays and plain containers.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import re
import zipfile
from collections.abc import Callable, Iterator, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from rdkit import Chem, rdBase
from rdkit.Chem import QED, Crippen, Draw, rdFingerprintGenerator
from rdkit.Chem.Draw import rdMolDraw2D
from rdkit.Chem.MolStandardize import rdMolStandardize
from torch import nn

from seqlab.data.artifacts import FCD_TORCH, MOSES_ARTIFACT, fetch_artifact, zip_member
from seqlab.errors import SeqlabError
from seqlab.storage import seqlab_home

CHEMNET_MEMBER = "fcd_torch/ChemNet_v0.13_pretrained.pt"
MOSES_DATA = "moses/dataset/data"  # test.csv.gz, test_scaffolds.csv.gz, train.csv.gz and their *_stats.npz
MOSES_STATS = ("test", "test_scaffolds")

# fcd_torch's ChemNet input: these symbols (index = channel), 'X' for anything else, '.' ends the string
CHEMNET_VOCAB = ("C", "N", "O", "H", "F", "Cl", "P", "B", "Br", "S", "I", "Si", "#", "(", ")", "+", "-",
                 "1", "2", "3", "4", "5", "6", "7", "8", "=", "[", "]", "@", "c", "n", "o", "s", "X", ".")
CHEMNET_LENGTH = 350
_CHEMNET_INDEX = {s: i for i, s in enumerate(CHEMNET_VOCAB)}

# Morgan fingerprints as MOSES takes them for IntDiv (GetMorganFingerprintAsBitVect(mol, 2, nBits=1024))
MORGAN_RADIUS, MORGAN_BITS = 2, 1024


# --- parsing --------------------------------------------------------------------------------------

def mol(smiles: str) -> Chem.Mol | None:
    """The sanitized RDKit molecule, or None for an empty or unparsable SMILES; logs nothing."""
    if not isinstance(smiles, str) or not smiles:  # RDKit reads '' as a molecule with no atoms
        return None
    with rdBase.BlockLogs():
        return Chem.MolFromSmiles(smiles)


def canonical(smiles: str) -> str | None:
    """RDKit canonical (isomeric) SMILES, or None when ``smiles`` is empty or unparsable."""
    m = mol(smiles)
    return None if m is None else Chem.MolToSmiles(m)


def canonicals(smiles: Sequence[str]) -> list[str | None]:
    """``canonical`` of each, with RDKit's log silenced once for the whole list."""
    with rdBase.BlockLogs():
        return [None if m is None else Chem.MolToSmiles(m) for m in map(mol, smiles)]


@contextlib.contextmanager
def _captured_log() -> Iterator[Callable[[], str]]:
    """RDKit's error log of the block as text, kept off stderr."""
    if hasattr(rdBase, "CaptureErrorLog"):  # newer RDKit captures without touching any stream
        with rdBase.BlockLogs(), rdBase.CaptureErrorLog() as capture:
            yield lambda: capture.messages
    else:
        # RDKit writes to C++ std::cerr by default, out of reach of redirect_stderr
        rdBase.LogToPythonStderr()
        buf = io.StringIO()
        with contextlib.redirect_stderr(buf):
            yield buf.getvalue


def parse_error(smiles: str) -> str | None:
    """None when RDKit reads ``smiles``, otherwise RDKit's reason in one line, e.g.
    ``"SMILES Parse Error: unclosed ring for input: 'C1CC'"`` or
    ``"Explicit valence for atom # 0 C, 5, is greater than permitted"``."""
    if not isinstance(smiles, str):
        return f"not a string: {type(smiles).__name__}"
    if not smiles:
        return "empty SMILES"
    with _captured_log() as log:
        m = Chem.MolFromSmiles(smiles)
    if m is not None:
        return None
    lines = [re.sub(r"^\[[\d:]+\]\s?", "", line).strip() for line in log().splitlines()]
    lines = [line for line in lines if line and not line.startswith("WARNING")]
    if not lines:
        return "RDKit could not read the SMILES"
    # syntax errors come as several lines: the reason, then where, then an ASCII pointer
    where = next((hit.group(1) for line in lines if (hit := re.search(r"around position (\d+)", line))), None)
    return lines[0] + (f" (around position {where})" if where else "")


# --- standardisation ------------------------------------------------------------------------------

def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def standardize(smiles: str, *, keep_stereo: bool = False, keep_isotopes: bool = False) -> tuple[str, list[str]]:
    """The molecule in a form a model with a small alphabet (MOSES: no salts, charges, stereo or
    isotopes) may read, as RDKit-canonical SMILES, and what changed, in words (empty if nothing did).

    With RDKit's MolStandardize: keep the largest fragment by heavy atoms (drops counter-ions and
    solvents; cisplatin keeps its PtCl2, not an ammonia), neutralise charges where a proton can be
    added or removed (a quaternary N or a nitro group stays charged), then, unless kept, remove stereo
    and isotope labels. Never raises for a molecule RDKit reads; SeqlabError with RDKit's reason
    for one it cannot."""
    m = mol(smiles)
    if m is None:
        raise SeqlabError(f"{smiles[:80]!r} is not a valid molecule: {parse_error(smiles)}")
    changes = []
    with rdBase.BlockLogs():  # MolStandardize logs every step it runs
        fragments = [Chem.MolToSmiles(f) for f in Chem.GetMolFrags(m, asMols=True)]
        if len(fragments) > 1:
            params = rdMolStandardize.CleanupParameters()
            params.largestFragmentChooserCountHeavyAtomsOnly = True  # NH3 (4 atoms with its Hs) is no bigger than PtCl2
            m = rdMolStandardize.LargestFragmentChooser(params).choose(m)
            fragments.remove(Chem.MolToSmiles(m))
            changes.append(f"kept the largest fragment (dropped {'.'.join(fragments)!r})")
        charged = sum(a.GetFormalCharge() != 0 for a in m.GetAtoms())
        if charged:
            m = rdMolStandardize.Uncharger(canonicalOrder=True).uncharge(m)
            left = sum(a.GetFormalCharge() != 0 for a in m.GetAtoms())
            if left < charged:
                changes.append("neutralised charges" if not left else
                               f"neutralised {charged - left} of {_plural(charged, 'charged atom')}")
        if not keep_stereo:
            centres = sum(a.GetChiralTag() != Chem.ChiralType.CHI_UNSPECIFIED for a in m.GetAtoms())
            bonds = sum(b.GetStereo() != Chem.BondStereo.STEREONONE for b in m.GetBonds())
            Chem.RemoveStereochemistry(m)
            if centres or bonds:
                what = [_plural(n, w) for n, w in ((centres, "centre"), (bonds, "double bond")) if n]
                changes.append(f"removed stereo ({', '.join(what)})")
        labelled = [a for a in m.GetAtoms() if a.GetIsotope()] if not keep_isotopes else []
        if labelled:
            for a in labelled:
                a.SetIsotope(0)
            m = Chem.RemoveHs(m)  # a deuterium is now a plain H, written implicitly
            changes.append(f"removed isotope labels ({_plural(len(labelled), 'atom')})")
        return Chem.MolToSmiles(m), changes


# --- MOSES metrics -------------------------------------------------------------------------------

def validity(smiles: Sequence[str]) -> float:
    """Fraction of samples RDKit parses; empty strings are invalid. 0.0 for no samples."""
    return sum(c is not None for c in canonicals(smiles)) / len(smiles) if len(smiles) else 0.0


def _valid(canon: Sequence[str | None]) -> list[str]:
    return [c for c in canon if c is not None]


def _unique(valid: Sequence[str], k: int | None) -> float:
    first = valid[:k] if k is not None else valid
    return len(set(first)) / len(first) if first else 0.0


def uniqueness(smiles: Sequence[str], k: int | None = None) -> float:
    """Unique@k: distinct canonical SMILES among the first ``k`` *valid* samples (as MOSES, which
    drops invalid samples before taking ``gen[:k]``). With fewer than ``k`` valid samples, or
    ``k=None``, all valid ones are used; 0.0 when none is valid."""
    return _unique(_valid(canonicals(smiles)), k)


def _novelty(valid: Sequence[str], train: set[str], key: Callable[[str], str | None] | None = None) -> float:
    distinct = set(valid)
    new = distinct - train if key is None else {c for c in distinct if key(c) not in train}
    return len(new) / len(distinct) if distinct else 0.0


def novelty(smiles: Sequence[str], train: set[str], key: Callable[[str], str | None] | None = None) -> float:
    """Fraction of the distinct valid canonical samples not in ``train``, which must hold canonical
    SMILES from the same RDKit (see ``canonicals``), or what ``key`` makes of them (a SELFIES model's
    training molecules as SELFIES: ``key`` writes a canonical SMILES so); 0.0 when no sample is valid."""
    return _novelty(_valid(canonicals(smiles)), train, key)


def fingerprints(smiles: Sequence[str]) -> np.ndarray:
    """Morgan bits (radius 2, 1024 bits) of the valid samples, duplicates kept: (n_valid, 1024) uint8."""
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=MORGAN_RADIUS, fpSize=MORGAN_BITS)
    with rdBase.BlockLogs():
        fps = [gen.GetFingerprintAsNumPy(m) for m in map(mol, smiles) if m is not None]
    return np.stack(fps).astype(np.uint8) if fps else np.zeros((0, MORGAN_BITS), np.uint8)


def tanimoto(a: str, b: str) -> float:
    """Tanimoto similarity of two molecules' Morgan fingerprints (as IntDiv takes them)."""
    fa, fb = fingerprints([a, b]).astype(bool)
    union = (fa | fb).sum()
    return float((fa & fb).sum() / union) if union else 1.0


def internal_diversity(smiles: Sequence[str], p: int = 1, block: int = 2048) -> float:
    """MOSES IntDiv_p: ``1 - mean_x (mean_y T(x, y)^p)^(1/p)`` over all ordered pairs of valid samples,
    self-pairs and duplicates included, T the Tanimoto similarity of Morgan fingerprints (two
    empty fingerprints count as identical). IntDiv1 is 1 minus the mean pairwise similarity.
    Done as blocked matrix products; 0.0 when no sample is valid."""
    fps = fingerprints(smiles)
    if not len(fps):
        return 0.0
    x = torch.from_numpy(fps).float()
    counts = x.sum(1)
    per_row = []
    for i in range(0, len(x), block):
        inter = x[i:i + block] @ x.T  # exact: bit counts are small integers
        union = counts[i:i + block, None] + counts[None] - inter
        sim = torch.where(union > 0, inter / union.clamp(min=1), 1.0).double()
        per_row.append((sim**p).mean(1) ** (1 / p))
    return float(1 - torch.cat(per_row).mean())


# --- properties to optimise ------------------------------------------------------------------------

# what an objective can weigh: RDKit's QED (Bickerton et al. 2012, 0..1) and Crippen logP (Wildman & Crippen 1999)
PROPERTIES: dict[str, Callable[[Chem.Mol], float]] = {
    "qed": lambda m: QED.qed(m),
    "logp": lambda m: Crippen.MolLogP(m),
}


def parse_objective(text: str) -> dict[str, float]:
    """``"qed"``, ``"logp"`` or a weighted sum such as ``"qed=1,logp=0.1"`` -> ``{property: weight}``."""
    weights = {}
    for part in (p.strip() for p in text.split(",")):
        name, _, weight = part.partition("=")
        name = name.strip().lower()
        if name not in PROPERTIES:
            raise SeqlabError(f"objective: unknown property {name!r}; choose from {', '.join(PROPERTIES)}, or a "
                              f"weighted sum such as 'qed=1,logp=0.1'")
        try:
            weights[name] = float(weight) if weight.strip() else 1.0
        except ValueError:
            raise SeqlabError(f"objective: the weight of {name!r} is {weight.strip()!r}, not a number") from None
    if not any(weights.values()):
        raise SeqlabError(f"objective {text!r} weighs nothing; give a property a weight other than 0")
    return weights


def properties(smiles: str, names: Sequence[str] = tuple(PROPERTIES)) -> dict[str, float] | None:
    """The named properties of a molecule (None when RDKit cannot parse it)."""
    m = mol(smiles)
    return None if m is None else {k: float(PROPERTIES[k](m)) for k in names}


def reconstruction(originals: Sequence[str], decoded: Sequence[str]) -> float:
    """Fraction of pairs whose decoded canonical SMILES equals the valid original's canonical SMILES."""
    if len(originals) != len(decoded):
        raise ValueError(f"{len(originals)} originals but {len(decoded)} decoded SMILES")
    if not len(originals):
        return 0.0
    pairs = zip(canonicals(originals), canonicals(decoded))
    return sum(o is not None and o == d for o, d in pairs) / len(originals)


# --- Fréchet ChemNet Distance ----------------------------------------------------------------------

def chemnet_one_hot(smiles: str) -> np.ndarray:
    """fcd_torch's input for one SMILES: (350, 35) one-hot divided by 35.

    Kept quirks, since the weights and published figures rest on them: a letter followed by
    'r', 'i' or 'l' is read as one symbol; reading stops at the first '.' (later fragments are
    ignored) or after 349 symbols, and '.' is written as end mark."""
    s = smiles + "."
    out = np.zeros((CHEMNET_LENGTH, len(CHEMNET_VOCAB)))
    src = dst = 0
    while True:
        n = 2 if s[src + 1] in "ril" else 1
        out[dst, _CHEMNET_INDEX.get(s[src:src + n], _CHEMNET_INDEX["X"])] = 1
        src, dst = src + n, dst + 1
        if s[src] == "." or dst == CHEMNET_LENGTH - 1:
            out[dst, _CHEMNET_INDEX["."]] = 1
            return out / len(CHEMNET_VOCAB)


_ACTIVATIONS = {"relu": F.relu, "selu": F.selu, "tanh": torch.tanh, "sigmoid": torch.sigmoid}


@lru_cache(maxsize=None)
def chemnet(device: str = "cpu") -> tuple[nn.ModuleList, tuple[dict, ...]]:
    """ChemNet v0.13 from the fcd_torch wheel: its layers and each layer's Keras settings."""
    whl = fetch_artifact(FCD_TORCH)
    with zipfile.ZipFile(whl) as zf:
        raw = io.BytesIO(zip_member(zf, CHEMNET_MEMBER, whl.name))
    config = torch.load(raw, weights_only=True, map_location="cpu")
    layers, infos = nn.ModuleList(), []
    for kind, (state, kwargs, info) in config:
        if kind not in ("Conv1d", "LSTM") or (kind == "Conv1d" and info["activation"] not in _ACTIVATIONS):
            raise SeqlabError(f"{CHEMNET_MEMBER} has a layer {kind} {info} that fcd_torch does not build")
        layer = nn.Conv1d(**kwargs) if kind == "Conv1d" else nn.LSTM(**kwargs)
        layer.load_state_dict(state)
        layers.append(layer)
        infos.append(info)
    return layers.to(device).eval(), tuple(infos)


def _same_pad(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    # fcd_torch's version of Keras 'same' padding, its rounding included (the weights expect it)
    n = x.shape[2]
    pad = max(kernel - (stride if n % stride == 0 else n % stride), 0)
    left = pad // stride
    return F.pad(x, (left, left if pad % stride == 0 else pad - left))


def _chemnet_forward(layers: nn.ModuleList, infos: tuple[dict, ...], x: torch.Tensor) -> torch.Tensor:
    """(b, 35, 350) one-hot -> (b, 512): strided convolutions, then LSTMs over the reversed sequence."""
    channels_first = True
    for layer, info in zip(layers, infos):
        if isinstance(layer, nn.Conv1d):
            if info["padding"] == "same":
                x = _same_pad(x, layer.kernel_size[0], layer.stride[0])
            x = _ACTIVATIONS[info["activation"]](layer(x))
        else:
            if channels_first:
                x, channels_first = x.transpose(1, 2), False
            if info["reverse"]:
                x = x.flip(1)
            x = layer(x)[0]
            if info["last"]:
                x = x[:, -1].clone()  # a view would keep the whole sequence output alive
    return x


def _activations(canon: Sequence[str], batch_size: int, device: str) -> np.ndarray:
    layers, infos = chemnet(device)
    out = [np.zeros((0, 512), np.float32)]
    with torch.inference_mode():
        for i in range(0, len(canon), batch_size):
            x = np.stack([chemnet_one_hot(s) for s in canon[i:i + batch_size]])
            x = torch.from_numpy(x).float().transpose(1, 2).to(device)
            out.append(_chemnet_forward(layers, infos, x).cpu().numpy())
    return np.concatenate(out)


def chemnet_activations(smiles: Sequence[str], batch_size: int = 512, device: str = "cpu") -> np.ndarray:
    """ChemNet's penultimate activations (n, 512) of the canonicalised SMILES, as fcd_torch
    computes them; an unparsable SMILES is a ValueError with RDKit's reason."""
    canon = canonicals(smiles)
    for i, c in enumerate(canon):
        if c is None:
            raise ValueError(f"SMILES {i} {smiles[i]!r} is invalid: {parse_error(smiles[i])}")
    return _activations(canon, batch_size, device)


def _mean_cov(act: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return act.mean(0), np.cov(act.T)


def fcd_stats(smiles: Sequence[str], batch_size: int = 512, device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Mean (512,) and covariance (512, 512) of the ChemNet activations of the valid samples
    (invalid ones dropped, as MOSES drops them before FCD); at least two must be valid."""
    valid = _valid(canonicals(smiles))
    if len(valid) < 2:
        raise ValueError(f"FCD statistics need at least 2 valid molecules, got {len(valid)}")
    return _mean_cov(_activations(valid, batch_size, device))


def _sqrt_psd(s: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
    """``|mu1 - mu2|^2 + Tr(s1 + s2 - 2 sqrt(s1 s2))``, the figure fcd_torch computes.

    fcd_torch takes ``scipy.linalg.sqrtm(s1 @ s2)``; here ``Tr sqrt(s1 s2)`` is the sum of the square
    roots of the eigenvalues of ``r s2 r`` with ``r = sqrt(s1)``, which has the eigenvalues of
    ``s1 s2`` but is symmetric: the same trace (to ~1e-9), several times faster at 512 dimensions,
    and free of the complex round-off sqrtm gives for the rank-deficient covariances of small samples."""
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    s1, s2 = np.atleast_2d(s1).astype(np.float64), np.atleast_2d(s2).astype(np.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape:
        raise ValueError(f"statistics differ in shape: {mu1.shape}/{s1.shape} vs {mu2.shape}/{s2.shape}")
    r = _sqrt_psd((s1 + s1.T) / 2)
    tr_covmean = np.sqrt(np.clip(np.linalg.eigvalsh(r @ s2 @ r), 0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)


def fcd(smiles: Sequence[str], ref: Sequence[str] | tuple[np.ndarray, np.ndarray],
        batch_size: int = 512, device: str = "cpu") -> float:
    """Fréchet ChemNet Distance of the valid samples to ``ref``, given as SMILES or as ``fcd_stats``
    (e.g. ``moses_test_stats()``); NaN when fewer than two samples are valid."""
    valid = _valid(canonicals(smiles))
    if len(valid) < 2:
        return float("nan")
    precomputed = isinstance(ref, tuple) and len(ref) == 2 and isinstance(ref[0], np.ndarray)
    mu_ref, s_ref = ref if precomputed else fcd_stats(ref, batch_size, device)
    return frechet_distance(*_mean_cov(_activations(valid, batch_size, device)), mu_ref, s_ref)


# --- MOSES reference statistics -----------------------------------------------------------------------

def _latin1_encode(text: str, encoding: str) -> bytes:
    # protocol-2 pickles store bytes as _codecs.encode(text, 'latin1'); no other codec is allowed
    if encoding.lower().replace("_", "-") not in ("latin1", "latin-1", "iso-8859-1", "iso8859-1"):
        raise pickle.UnpicklingError(f"refusing _codecs.encode with encoding {encoding!r}")
    return text.encode("latin-1")


def _numpy_reconstruct() -> Callable:
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


def _numpy_scalar() -> Callable:
    try:
        from numpy._core.multiarray import scalar
    except ImportError:
        from numpy.core.multiarray import scalar
    return scalar


class _StatsUnpickler(pickle.Unpickler):
    """Rebuilds numpy arrays, dicts and lists only; any other global is refused."""

    # MOSES keeps fragment and scaffold counts as collections.Counter, read here as a plain dict
    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
        ("numpy.core.multiarray", "scalar"): _numpy_scalar,
        ("numpy._core.multiarray", "scalar"): _numpy_scalar,
        ("numpy", "ndarray"): lambda: np.ndarray,
        ("numpy", "dtype"): lambda: np.dtype,
        ("_codecs", "encode"): lambda: _latin1_encode,
        ("builtins", "dict"): lambda: dict,
        ("builtins", "list"): lambda: list,
        ("collections", "Counter"): lambda: dict,
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a statistics file; "
                                         "only numpy arrays and plain containers are allowed")
        return self.ALLOWED[module, name]()


def read_pickled_npy(f) -> object:
    """The object inside an object-dtype ``.npy`` stream, via the restricted unpickler."""
    version = np.lib.format.read_magic(f)
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, _, dtype = read_header(f)
    if dtype != np.dtype(object):
        raise SeqlabError(f"expected a pickled object array, found dtype {dtype} shape {shape}")
    obj = _StatsUnpickler(f).load()
    return obj.item() if isinstance(obj, np.ndarray) and obj.shape == () else obj


def moses_test_stats(name: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """FCD (mu, sigma) of the MOSES ``test`` or ``test_scaffolds`` set, as shipped with molsets 0.3.1;
    cached as a plain .npz under ``$SEQLAB_HOME/chem``."""
    if name not in MOSES_STATS:
        raise SeqlabError(f"no MOSES statistics {name!r}; expected one of {', '.join(MOSES_STATS)}")
    cache = seqlab_home() / "chem" / f"moses_{name}_fcd.npz"
    if not cache.exists():
        whl = fetch_artifact(MOSES_ARTIFACT)
        member = f"{MOSES_DATA}/{name}_stats.npz"
        with zipfile.ZipFile(whl) as zf:
            inner = io.BytesIO(zip_member(zf, member, whl.name))
        with zipfile.ZipFile(inner) as npz, npz.open("stats.npy") as f:
            stats = read_pickled_npy(f)
        mu, sigma = (np.asarray(stats["FCD"][k], np.float64) for k in ("mu", "sigma"))
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(tmp, mu=mu, sigma=sigma)
        os.replace(tmp, cache)  # concurrent readers see the whole file or none
    with np.load(cache, allow_pickle=False) as z:
        return z["mu"], z["sigma"]


# --- summary --------------------------------------------------------------------------------------

def _k_name(k: int) -> str:
    return f"{k // 1000}k" if k >= 1000 and k % 1000 == 0 else str(k)


def summary(samples: Sequence[str], *, train: set[str] | None = None,
            test_stats: tuple[np.ndarray, np.ndarray] | None = None, ks: Sequence[int] = (1000, 10000),
            batch_size: int = 512, device: str = "cpu") -> dict[str, float]:
    """MOSES-style metrics of generated samples: ``n``, ``valid``, ``unique@1k`` / ``unique@10k``
    (each only when there are at least k samples; taken over the first k valid ones),
    ``novelty`` (when ``train`` canonical SMILES are given), ``intdiv`` (IntDiv1) and
    ``fcd_test`` (when ``test_stats`` are given; NaN with fewer than two valid samples)."""
    canon = canonicals(samples)
    valid = _valid(canon)
    out: dict[str, float] = {"n": len(samples), "valid": len(valid) / len(samples) if len(samples) else 0.0}
    for k in ks:
        if len(samples) >= k:
            out[f"unique@{_k_name(k)}"] = _unique(valid, k)
    if train is not None:
        out["novelty"] = _novelty(valid, train)
    out["intdiv"] = internal_diversity(valid)
    if test_stats is not None:
        out["fcd_test"] = fcd(valid, test_stats, batch_size, device)
    return out


# --- drawing --------------------------------------------------------------------------------------

def svg(smiles: str, size: tuple[int, int] = (300, 200)) -> str:
    """The molecule drawn as an SVG document; ValueError with RDKit's reason for invalid SMILES."""
    m = mol(smiles)
    if m is None:
        raise ValueError(f"cannot draw {smiles!r}: {parse_error(smiles)}")
    drawer = rdMolDraw2D.MolDraw2DSVG(*size)
    rdMolDraw2D.PrepareAndDrawMolecule(drawer, m)
    drawer.FinishDrawing()
    return drawer.GetDrawingText()


def grid_png(smiles: Sequence[str], path: str | Path, per_row: int = 6, legends: Sequence[str] | None = None,
             size: tuple[int, int] = (250, 200)) -> Path:
    """A PNG grid of the molecules, ``per_row`` to a row; an invalid SMILES leaves its cell empty."""
    if legends is not None and len(legends) != len(smiles):
        raise ValueError(f"{len(legends)} legends for {len(smiles)} molecules")
    with rdBase.BlockLogs():
        mols = [mol(s) for s in smiles]
        png = Draw.MolsToGridImage(mols, molsPerRow=per_row, subImgSize=size,
                                   legends=list(legends) if legends is not None else None, returnPNG=True)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(png, bytes):
        path.write_bytes(png)
    else:  # a PIL image where a notebook has patched MolsToGridImage
        png.save(path, format="PNG")
    return path
