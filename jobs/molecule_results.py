"""The SMILES generators on MOSES, judged as MOSES judges them: the table and figures of results/molecules/.

    python jobs/molecule_results.py                   # every run of configs/experiments/molecules.yaml
    python jobs/molecule_results.py --only vae        # runs whose name contains "vae", then the tables
    python jobs/molecule_results.py --tables-only     # rebuild the table and figures from runs/*.json
    ray job submit --working-dir . -- python jobs/molecule_results.py

Each model trains through Ray Train (``seqlab train``, 2 workers). Its best checkpoint then samples
``--samples`` molecules (temperature 1, seed 0), scored with RDKit against the whole MOSES training
set (novelty) and the MOSES test set (FCD, with ChemNet); reconstruction is measured on held-out test
molecules. Runs are named, so finished ones are reused and cut ones resume; a run's scores are
kept in runs/<name>.json and not recomputed.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from seqlab import chem, provenance, report
from seqlab.checkpoint import local_dir
from seqlab.data.prepare import prepare
from seqlab.storage import seqlab_home
from seqlab.tasks.molecule import MoleculeGenerator
from seqlab_tools.experiments import train

# The published MOSES baselines (Polykovskiy et al. 2020, Table 2), as quoted in our issue tracker
PUBLISHED = [
    {"run": "published (MOSES)", "model": "CharRNN", "valid": 0.975, "unique@10k": 0.999, "novelty": 0.842},
    {"run": "published (MOSES)", "model": "VAE", "valid": 0.977, "unique@10k": 0.998, "novelty": 0.695},
    {"run": "published (MOSES)", "model": "JTN-VAE", "valid": 1.0, "unique@10k": 0.999, "novelty": 0.915},
]
COLUMNS = ["valid", "unique@1k", "unique@10k", "novelty", "intdiv", "fcd_test", "reconstruction"]


def score(record: dict, *, samples: int, reconstruct: int, train_set: set[str], test: pd.DataFrame) -> dict:
    """MOSES metrics of a run's best checkpoint; its samples are kept for the figures."""
    t0 = time.perf_counter()
    with local_dir(record["checkpoint"]) as d:
        gen = MoleculeGenerator(d)
        smiles = gen.sample(samples, temperature=1.0, seed=0)
        scores = chem.summary(smiles, train=train_set, test_stats=chem.moses_test_stats("test"))
        if gen.latent_size:
            originals = test["text"].head(reconstruct).tolist()
            scores["reconstruction"] = chem.reconstruction(originals, gen.decode(gen.encode_smiles(originals)))
        data = gen.meta["data"]
    scores["scoring_time_s"] = round(time.perf_counter() - t0, 1)
    train_n = min(data["limit"] or data["counts"]["train"], data["counts"]["train"])
    return {"scores": scores, "samples": smiles[:200], "train_n": train_n, "scored_at_commit": provenance.git_commit()}


def table(records: list[dict], out_dir: Path) -> pd.DataFrame:
    rows = []
    for r in records:
        s = r["moses"]["scores"]
        rows.append({"run": r["name"], "model": r["model"], **{c: s.get(c) for c in COLUMNS},
                     "train molecules": r["moses"]["train_n"], "epochs": r["epochs"],
                     "train time (s)": r["train_time_s"]})
    rows += PUBLISHED
    df = pd.DataFrame(rows)
    df.to_csv(out_dir / "table.csv", index=False)
    return df


def latent_plot(record: dict, test: pd.DataFrame, path: Path, n: int = 2000) -> None:
    """The test molecules' codes, first two principal components, coloured by logP and by weight."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from rdkit import Chem
    from rdkit.Chem import Crippen, Descriptors

    smiles = test["text"].head(n).tolist()
    with local_dir(record["checkpoint"]) as d:
        z = MoleculeGenerator(d).encode_smiles(smiles)
    z = z - z.mean(0)
    _, s, vt = np.linalg.svd(z, full_matrices=False)
    xy = z @ vt[:2].T
    explained = (s[:2] ** 2 / (s**2).sum()).round(3)
    mols = [Chem.MolFromSmiles(x) for x in smiles]
    props = {"logP (Crippen)": [Crippen.MolLogP(m) for m in mols], "molecular weight": [Descriptors.MolWt(m) for m in mols]}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for ax, (name, values) in zip(axes, props.items()):
        sc = ax.scatter(xy[:, 0], xy[:, 1], c=values, s=4, cmap="viridis")
        fig.colorbar(sc, ax=ax, label=name)
        ax.set_xlabel(f"PC1 ({explained[0]:.1%} of variance)")
        ax.set_ylabel(f"PC2 ({explained[1]:.1%})")
        ax.set_title(f"{record['name']}: codes of {n} MOSES test molecules")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_markdown(df: pd.DataFrame, records: list[dict], args, out_dir: Path) -> None:
    r = records[0]
    commits = ", ".join(sorted({x["commit"] for x in records})) + " (training); scored at " + ", ".join(
        sorted({x["moses"].get("scored_at_commit", "?") for x in records}))
    goal = ("Goal for the VAE: validity >= 0.98, unique@10k >= 0.998, novelty >= 0.90. Unique@10k is computed "
            "on the first 10,000 valid samples when there are that many; with fewer it is the unique share of "
            "all valid samples (see `seqlab.chem.uniqueness`).")
    formats = {c: "{:.3f}" for c in COLUMNS} | {"train molecules": "{:,.0f}", "epochs": "{:.0f}",
                                                "train time (s)": "{:.0f}"}
    runs = "\n".join(f"- `{x['name']}`: `{x['command']}`" for x in records)
    (out_dir / "table.md").write_text(f"""# SMILES generators on MOSES

{args.samples:,} molecules sampled from each model's best checkpoint (temperature 1.0, seed 0), scored
with RDKit as MOSES scores them: validity; uniqueness among the first 1k and 10k valid samples; novelty
= unique valid samples absent from the whole MOSES training set (1,584,663 molecules); IntDiv =
1 - mean Tanimoto similarity of Morgan fingerprints (radius 2, 1024 bits) over all pairs; FCD/test =
Fréchet ChemNet Distance to the MOSES test set (ChemNet weights of `fcd_torch==1.0.7`, reference
statistics shipped in `molsets==0.3.1`); reconstruction = share of {args.reconstruct:,} held-out test
molecules decoded (greedy, from the posterior mean) back to the same canonical SMILES.

{report.markdown_table(df, formats=formats)}

{goal}

Each run's training command (2 Ray Train workers):

{runs}

The published rows train on all 1,584,663 MOSES training molecules; ours on the subset and
epochs given in each row, on the hardware below (train time includes time shared with other jobs).

- Samples: `samples.png` (a grid of sampled molecules of each model); latent space: `latent-<run>.png`
- Each run's `seqlab train` command, per-epoch history and scores: `runs/<name>.json`

How it was made:
{provenance.markdown({"command": "python jobs/molecule_results.py", "commit": commits,
                      "hardware": r["hardware"], "versions": r["versions"]})}
- Data: `datasets/moses.md` (source, licence, sha256, invalid SMILES, split rule)
""")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default="configs/experiments/molecules.yaml", help="experiment list (YAML)")
    p.add_argument("--only", default="", help="run only runs whose name contains one of these comma-separated texts")
    p.add_argument("--storage-path", default=str(seqlab_home() / "runs" / "molecules"), help="where the runs live")
    p.add_argument("--results-dir", default="results/molecules", help="where the table and figures go")
    p.add_argument("--samples", type=int, default=10_000, help="molecules sampled per model for the table")
    p.add_argument("--reconstruct", type=int, default=1000, help="held-out test molecules to reconstruct")
    p.add_argument("--tables-only", action="store_true", help="rebuild the table and figures, train nothing")
    p.add_argument("--rescore", action="store_true", help="score the trained runs again (e.g. after a metric fix)")
    args = p.parse_args()
    cfg = yaml.safe_load(Path(args.config).read_text())
    out_dir = Path(args.results_dir)
    (out_dir / "runs").mkdir(parents=True, exist_ok=True)
    prepared = prepare("moses", molecules=True)
    test = prepared.split("test")
    if not args.tables_only:
        from seqlab.train.driver import init_ray

        init_ray()
        only = [x for x in args.only.split(",") if x] or [""]
        train_set = None
        for spec in cfg["runs"]:
            if not any(x in spec["name"] for x in only):
                continue
            path = out_dir / "runs" / f"{spec['name']}.json"
            old = json.loads(path.read_text()) if path.exists() else {}
            if "moses" in old and not args.rescore:
                print(f"[seqlab] === {spec['name']}: scored already ({path})", flush=True)
                continue
            print(f"[seqlab] === {spec['name']}", flush=True)
            record = old if args.rescore and old else train(spec, cfg["common"], args.storage_path, out_dir)
            if train_set is None:
                train_set = set(prepared.split("train")["text"]) | set(prepared.split("validation")["text"])
            print(f"[seqlab] scoring {args.samples} samples of {spec['name']}", flush=True)
            record["moses"] = score(record, samples=args.samples, reconstruct=args.reconstruct,
                                    train_set=train_set, test=test)
            path.write_text(json.dumps(record, indent=2))
    records = [json.loads(p.read_text()) for p in sorted((out_dir / "runs").glob("*.json"))]
    records = [r for r in records if "moses" in r]
    if not records:
        raise SystemExit("no scored runs yet; run without --tables-only first")
    df = table(records, out_dir)
    write_markdown(df, records, args, out_dir)
    drawn = [(r["name"], s) for r in records for s in [x for x in r["moses"]["samples"] if chem.canonical(x)][:6]]
    chem.grid_png([s for _, s in drawn], out_dir / "samples.png", per_row=6, legends=[n for n, _ in drawn])
    for r in records:
        if r["moses"]["scores"].get("reconstruction") is not None:
            latent_plot(r, test, out_dir / f"latent-{r['name']}.png")
    (out_dir / "datasets").mkdir(exist_ok=True)
    (out_dir / "datasets" / "moses.md").write_text((prepared.root / "README.md").read_text())
    print(f"[seqlab] table in {out_dir}/table.md", flush=True)


if __name__ == "__main__":
    main()
