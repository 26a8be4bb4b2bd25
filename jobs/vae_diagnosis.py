"""Why a SMILES VAE's samples are not molecules: results/molecules/vae_diagnosis.md (+ .json, .png).

    python jobs/vae_diagnosis.py --runs ~/.seqlab/runs/molecules/moses-smiles-vae [more runs]

For every kept checkpoint of each run, on held-out MOSES test molecules and on codes from the prior:

- validity of molecules decoded from the prior N(0, I), greedily and sampled at temperatures 0.5 and 1;
- validity and reconstruction of greedy decodes from the posterior means of test molecules, and
  from codes drawn from their posteriors q(z|x);
- validity of greedy decodes from a Gaussian fitted to the test molecules' posterior means (the
  "aggregate posterior"): high where the prior's is low says the codes lie away from the prior,
  not that the decoder cannot write molecules;
- KL(q(z|x) || N(0, I)) per latent dimension, and the active units (dimensions whose posterior
  mean varies across molecules: variance > 0.01, Burda et al. 2016).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from seqlab import chem, provenance
from seqlab.checkpoint import epoch_folders, local_dir
from seqlab.tasks.molecule import MoleculeGenerator

ROOT = Path(__file__).resolve().parents[1]


def diagnose(model: MoleculeGenerator, test: list[str], n: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    mu, logvar = model.posterior(test)
    kl = 0.5 * (mu**2 + np.exp(logvar) - 1 - logvar)  # (n, latent) nats
    row = {"kl_nats": float(kl.sum(1).mean()), "kl_per_dim": kl.mean(0).round(4).tolist(),
           "active_units": int((mu.var(0) > 0.01).sum()), "latent": model.latent_size,
           "mean_code_norm": float(np.linalg.norm(mu, axis=1).mean())}
    prior = rng.standard_normal((n, model.latent_size)).astype(np.float32)
    for name, temperature in (("prior_greedy", 0.0), ("prior_t0.5", 0.5), ("prior_t1", 1.0)):
        row[f"valid_{name}"] = chem.validity(model.decode(prior, temperature=temperature, seed=seed))
    from_mean = model.decode(mu)
    row["valid_posterior_mean"], row["reconstruction"] = chem.validity(from_mean), chem.reconstruction(test, from_mean)
    drawn = (mu + np.exp(0.5 * logvar) * rng.standard_normal(mu.shape)).astype(np.float32)
    from_drawn = model.decode(drawn)
    row["valid_posterior_sample"] = chem.validity(from_drawn)
    row["reconstruction_posterior_sample"] = chem.reconstruction(test, from_drawn)
    fitted = rng.multivariate_normal(mu.mean(0), np.cov(mu, rowvar=False), size=n).astype(np.float32)
    row["valid_aggregate_fit"] = chem.validity(model.decode(fitted))
    return row


COLUMNS = [("epoch", "epoch"), ("kl_nats", "KL nats"), ("active_units", "active units"),
           ("valid_prior_t1", "prior, T 1"), ("valid_prior_t0.5", "prior, T 0.5"), ("valid_prior_greedy", "prior, greedy"),
           ("valid_aggregate_fit", "fitted Gaussian, greedy"), ("valid_posterior_sample", "posterior draw, greedy"),
           ("valid_posterior_mean", "posterior mean, greedy"), ("reconstruction", "reconstruction")]


def markdown(out: dict) -> str:
    prov = out["provenance"]
    lines = ["# The SMILES VAE, diagnosed", "",
             f"{out['test']} MOSES test molecules (the first the model reads) and {out['samples']} codes from the "
             "prior per row; every figure but KL and active units is a share (validity: RDKit parses the decode; "
             "reconstruction: the greedy decode is the same canonical molecule). Columns after 'active units': "
             "validity of decodes from each source.", ""]
    lines.append("| run | " + " | ".join(title for _, title in COLUMNS) + " |")
    lines.append("|---|" + "---:|" * len(COLUMNS))
    for r in out["rows"]:
        cells = [str(r[k]) if k in ("epoch", "active_units") else f"{r[k]:.3f}" if k != "kl_nats" else f"{r[k]:.1f}"
                 for k, _ in COLUMNS]
        lines.append(f"| {r['run']} | " + " | ".join(cells) + " |")
    lines += ["", "![KL per latent dimension, and validity by where the code came from](vae_diagnosis.png)", "",
              "How it was made:", provenance.markdown(prov), ""]
    return "\n".join(lines)


def plot(out: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    last = {}
    for r in out["rows"]:
        last[r["run"]] = r  # each run's latest checkpoint
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4))
    for name, r in last.items():
        a.plot(sorted(r["kl_per_dim"], reverse=True), marker=".", label=f"{name} (epoch {r['epoch']})")
    a.axhline(0.01, color="grey", lw=0.8, ls=":")
    a.set(yscale="log", xlabel="latent dimension (sorted)", ylabel="mean KL (nats)", title="KL per latent dimension")
    a.legend(fontsize=8)
    keys = [k for k, _ in COLUMNS[3:9]]
    for i, (name, r) in enumerate(last.items()):
        b.bar(np.arange(len(keys)) + i * 0.8 / len(last), [r[k] for k in keys], width=0.8 / len(last), label=name)
    b.set_xticks(np.arange(len(keys)), [t for _, t in COLUMNS[3:9]], rotation=30, ha="right", fontsize=8)
    b.set(ylabel="valid share", ylim=(0, 1), title="validity by where the code came from")
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n", 2)[2])
    p.add_argument("--runs", nargs="+", required=True, help="VAE run folders (each epoch_* checkpoint kept is measured)")
    p.add_argument("--test", type=int, default=1000, help="held-out test molecules (default: 1000)")
    p.add_argument("--samples", type=int, default=1000, help="codes from the prior per row (default: 1000)")
    p.add_argument("--out", default=str(ROOT / "results" / "molecules" / "vae_diagnosis.md"))
    args = p.parse_args(argv)
    from seqlab.data.prepare import prepare

    pool = prepare("moses", molecules=True).split("test")["text"].head(5 * args.test).tolist()
    rows = []
    for run in args.runs:
        for uri in epoch_folders(str(Path(run).expanduser())):
            with local_dir(uri) as d:
                model = MoleculeGenerator(d)
                test = [s for s in pool if not model.unreadable(s)][: args.test]
                row = {"run": Path(run).name, "epoch": model.meta["epoch"] + 1, **diagnose(model, test, args.samples)}
            rows.append(row)
            print(f"[vae_diagnosis] {row['run']} epoch {row['epoch']}: "
                  + ", ".join(f"{k} {row[k]:.3f}" for k, _ in COLUMNS[1:]), flush=True)
    command = ["python", "jobs/vae_diagnosis.py", *(argv if argv is not None else sys.argv[1:])]
    out = {"provenance": provenance.record(command),
           "test": args.test, "samples": args.samples, "rows": rows}
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".json").write_text(json.dumps(out, indent=1) + "\n")
    plot(out, path.with_suffix(".png"))
    path.write_text(markdown(out))
    print(f"[vae_diagnosis] wrote {path}")
    return out


if __name__ == "__main__":
    main()
