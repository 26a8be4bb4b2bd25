"""What a finished search leaves: ``search.csv`` (one row per trial), ``search.png``, ``best.json``
and the best trial's test report."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd

from seqlab import provenance
from seqlab.errors import SeqlabError
from seqlab.storage import to_uri
from seqlab.tune.space import Dim, column


def summarise(grid, epochs: int, metric: str, mode: str, dims: dict[str, Dim]) -> pd.DataFrame:
    """One row per trial: its searched values, its best epoch by the metric and that epoch's checkpoint."""
    rows = []
    for result in grid:
        df = result.metrics_dataframe
        if df is not None and "epoch" in df:  # a resumed trial reports its earlier epochs again: keep one each
            df = df.drop_duplicates("epoch", keep="last").reset_index(drop=True)
        if df is None or metric not in df or df[metric].isna().all():
            rows.append({"trial": result.path.rsplit("/", 1)[-1], "status": "error", "error": str(result.error)})
            continue
        best = df.loc[df[metric].idxmax() if mode == "max" else df[metric].idxmin()]
        cfg = result.config
        rows.append({
            "trial": result.path.rsplit("/", 1)[-1],
            **{name: column(d, cfg[name]) for name, d in dims.items() if name in cfg},
            "epochs_run": int(df["epoch"].max()),
            "stopped_early": bool(df["epoch"].max() < epochs),
            "best_epoch": int(best["epoch"]),
            metric: round(float(best[metric]), 4),
            **{k: round(float(best[k]), 4) for k in df.columns if k.startswith("val_") and k != metric},
            "train_time_s": round(float(df["epoch_time_s"].sum()), 1),
            "checkpoint": checkpoint_of(best, result.filesystem),
            "status": "error" if result.error else "ok",
        })
    out = pd.DataFrame(rows)
    if metric in out:
        out = out.sort_values(metric, ascending=mode == "min", na_position="last")
    return out.reset_index(drop=True)


def checkpoint_of(row: pd.Series, filesystem) -> str | None:
    """The checkpoint of a trial's epoch: as Tune recorded it, else where the run wrote it (an epoch
    reported again after a resume carries no checkpoint of its own)."""
    if isinstance(row.get("checkpoint_path"), str) and row["checkpoint_path"]:
        return to_uri(row["checkpoint_path"], filesystem)
    return row["checkpoint_dir"] if isinstance(row.get("checkpoint_dir"), str) else None


def _label(name: str, d: Dim) -> str:
    return {"hidden": "LSTM width", "lr": "learning rate"}.get(name, name.replace("_", " ")) + (" (log)" if d.log else "")


def plot(summary: pd.DataFrame, path: Path, metric: str, dims: dict[str, Dim]) -> None:
    """The trials over the first two searched fields, coloured by the metric; then the metric
    against each field, trials that ASHA stopped marked apart."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    ok = summary[summary["status"] == "ok"]
    fields = [n for n in dims if n in ok and pd.api.types.is_numeric_dtype(ok[n])]
    pair = fields[:2] if len(fields) >= 2 else []
    fig, axes = plt.subplots(1, len(fields) + bool(pair), figsize=(4.7 * (len(fields) + bool(pair)), 4.2),
                             constrained_layout=True, squeeze=False)
    axes = list(axes[0])
    name = metric.replace("_", " ")
    if pair:
        (x, y), ax = pair, axes.pop(0)
        sc = ax.scatter(ok[x], ok[y], c=ok[metric], s=80, cmap="viridis", edgecolors="k")
        ax.set(xscale="log" if dims[x].log else "linear", yscale="log" if dims[y].log else "linear",
               xlabel=_label(x, dims[x]), ylabel=_label(y, dims[y]), title=f"trials, colour = {name}")
        fig.colorbar(sc, ax=ax)
        if dims[x].log and dims[x].kind == "lograndint":
            _power_of_two_ticks(ax, ok[x], NullFormatter)
    for ax, col in zip(axes, fields):
        for stopped, marker, label in ((False, "o", "ran all epochs"), (True, "x", "stopped by ASHA")):
            part = ok[ok["stopped_early"] == stopped]
            ax.scatter(part[col], part[metric], marker=marker, label=label)
        ax.set(xscale="log" if dims[col].log else "linear", xlabel=_label(col, dims[col]), ylabel=f"best {name}")
        ax.grid(alpha=0.3)
        if dims[col].kind == "lograndint":
            _power_of_two_ticks(ax, ok[col], NullFormatter)
    if fields:
        axes[0].legend()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _power_of_two_ticks(ax, values: pd.Series, null_formatter) -> None:
    """Plain power-of-two ticks on a log axis of widths."""
    widths = [2**k for k in range(3, 11) if values.min() / 2 < 2**k < values.max() * 2]
    ax.set_xticks(widths, [str(w) for w in widths])
    ax.xaxis.set_minor_formatter(null_formatter())


def write_results(summary: pd.DataFrame, out_dir: Path, metric: str, extra: dict, dims: dict[str, Dim]) -> dict:
    """``search.csv``, ``search.png`` and ``best.json`` (the best trial and its checkpoint)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    summary.to_csv(out_dir / "search.csv", index=False)
    ok = summary[summary["status"] == "ok"]
    if ok.empty:
        raise SeqlabError(f"no trial of the search finished an epoch; see the trial errors in {out_dir}/search.csv")
    plot(summary, out_dir / "search.png", metric, dims)
    best = {"metric": metric, "space": {k: str(d) for k, d in dims.items()},
            **{k: (v.item() if hasattr(v, "item") else v) for k, v in ok.iloc[0].items()}, **extra}
    (out_dir / "best.json").write_text(json.dumps(best, indent=2))
    return best


def write_test_report(out_dir: Path, best: dict, test: dict, cfg: dict, prov: dict) -> None:
    """``test_metrics.json`` and ``test_metrics.md``: the best trial on the test split, and how it was made."""
    metric = best["metric"]
    searched = {k: best[k] for k in best.get("space", {})}
    report = {"best_trial": best["trial"], "checkpoint": best["checkpoint"], **searched, metric: best[metric],
              "test": test, "data": best["data"], "model": dataclasses.asdict(cfg["model"]),
              "train": dataclasses.asdict(cfg["train"]), **prov}
    (out_dir / "test_metrics.json").write_text(json.dumps(report, indent=2))
    rows = "\n".join(f"| test {k.replace('_', ' ')} | {v:.4f} |" for k, v in test.items()
                     if isinstance(v, float) and k != "loss")
    per_class = ""
    if "per_class_f1" in test:
        per_class = "Per-class F1:\n\n| class | F1 |\n|---|---:|\n" + "\n".join(
            f"| {lab} | {f1:.3f} |" for lab, f1 in test["per_class_f1"].items()) + "\n\n"
    values = ", ".join(f"{k} {v}" for k, v in searched.items())
    (out_dir / "test_metrics.md").write_text(f"""# {best['data']['name']}: tuned {cfg['model'].model} on the test split

| metric | value |
|---|---:|
{rows}
| test examples | {test['n']} |
| best trial | `{best['trial']}` ({values}) |
| its {metric.replace('_', ' ')} | {best[metric]:.4f} (epoch {best['best_epoch']}) |
| trials / search wall time | see `search.csv` / {best['search_wall_time_s']} s |

{per_class}How it was made:
{provenance.markdown(prov)}
- Data: `{best['data']['name']}` (artifact sha256 `{best['data']['sha256']}`), {best['data']['split_rule']};
  labels kept: {best['data'].get('keep_labels') or 'all'}; row limit per split: {best['data']['limit']}
""")
