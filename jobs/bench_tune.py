"""Ray Tune's overhead, and what ASHA + TPE saves against a full grid over the same values.

    python jobs/bench_tune.py                 # -> results/perf/tune.{md,csv}, tune_trials.csv, tune.png

Two searches of the same model on the same data, one after the other (``seqlab.search.run_search``,
the code of ``seqlab tune``):
- the grid: every width x dropout of ``--hidden-values`` x ``--dropout-values``, all epochs;
- ASHA + TPE choosing from the same values (``--samples`` trials, stopped early by ASHA).
Overhead: the search's wall time against the sum of its trials' times divided by the number of
trials run at once. Savings: the epochs ASHA + TPE had run (all trials, in the order they were
reported) when its best validation metric first came within ``--within`` of the grid's best, as a
fraction of the grid's epochs.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd

from seqlab.config import DataConfig, ModelConfig, SearchConfig, TrainConfig
from seqlab.train.driver import init_ray, prepare
from seqlab.tune.search import objective, run_search
from seqlab_tools import perf


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--dataset", default="sentences2", help="built-in dataset or data file")
    p.add_argument("--model", default="lstm", help="a model with an LSTM width and dropout")
    p.add_argument("--rows", type=int, default=0, help="rows per split (0 = all; the first rows of a split need not hold every class)")
    p.add_argument("--max-len", type=int, default=64, help="tokens per text")
    p.add_argument("--hidden-values", default="16,64,256", help="LSTM widths of the grid")
    p.add_argument("--dropout-values", default="0,0.3,0.6", help="dropouts of the grid")
    p.add_argument("--epochs", type=int, default=6, help="epochs of a full trial")
    p.add_argument("--samples", type=int, default=9, help="ASHA + TPE trials")
    p.add_argument("--concurrent", type=int, default=2, help="trials at once (1 worker, 1 CPU each)")
    p.add_argument("--within", type=float, default=0.01, help="how close to the grid's best counts as found (relative)")
    p.add_argument("--out", type=Path, default=Path("results/perf"), help="folder of the tables")
    return p.parse_args(argv)


def trial_rows(result_grid, search: str) -> pd.DataFrame:
    """Every epoch report of every trial, with the trial's name and Tune's timestamps."""
    frames = []
    for result in result_grid:
        df = result.metrics_dataframe
        if df is None or df.empty:
            continue
        df = df.assign(search=search, trial=result.path.rsplit("/", 1)[-1], hidden=int(result.config["hidden"]),
                       dropout=float(result.config["dropout"]))
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def plot(reports: pd.DataFrame, best: float, target: float, metric: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for search, df in reports.groupby("search"):
        df = df.sort_values("timestamp", kind="stable").reset_index(drop=True)
        ax.step(range(1, len(df) + 1), df[metric].cummax(), where="post", label=search)
    ax.axhline(best, color="k", lw=0.8, ls="--", label="grid's best")
    ax.axhline(target, color="grey", lw=0.8, ls=":", label="within 1% of it")
    ax.set_xlabel("epochs run (all trials)")
    ax.set_ylabel(f"best {metric} so far")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> None:
    args = parse(argv)
    prov = perf.record("bench_tune.py", argv)
    init_ray()
    data_cfg = DataConfig(dataset=args.dataset, limit=args.rows or None, max_len=args.max_len)
    model_cfg = ModelConfig(model=args.model)
    prepared = prepare(data_cfg, model_cfg)
    storage = tempfile.mkdtemp(prefix="seqlab-bench-tune-")  # fresh: a search of the same name would resume
    train_cfg = TrainConfig(name="bench", storage_path=storage, epochs=args.epochs, num_workers=1, cpus_per_worker=1,
                            keep_checkpoints=1, precision="fp32")
    values = {"hidden_values": args.hidden_values, "dropout_values": args.dropout_values,
              "max_concurrent": args.concurrent}
    searches = {"grid": SearchConfig(search_name="bench-grid", grid=True, **values),
                "ASHA + TPE": SearchConfig(search_name="bench-asha-tpe", num_samples=args.samples, **values)}
    metric, mode = objective(prepared.task, searches["grid"], train_cfg)
    reports, rows = [], []
    for label, cfg in searches.items():
        print(f"[bench] {label} search", flush=True)
        t0 = time.perf_counter()
        result_grid = run_search(prepared, model_cfg, train_cfg, cfg)
        wall = time.perf_counter() - t0
        got = trial_rows(result_grid, label)
        reports.append(got)
        rows.append({"search": label, **perf.search_overhead(got, wall, args.concurrent)})
    reports = pd.concat(reports, ignore_index=True)
    grid = reports[reports["search"] == "grid"]
    best = grid[metric].max() if mode == "max" else grid[metric].min()
    target = best * (1 - args.within) if mode == "max" else best * (1 + args.within)
    grid_epochs = len(grid)
    for row in rows:
        mine = reports[reports["search"] == row["search"]]
        reached = perf.epochs_to_reach(mine, target, metric, mode)
        row |= {f"best_{metric}": mine[metric].max() if mode == "max" else mine[metric].min(),
                "epochs_to_within": reached, "fraction_of_grid_epochs": None if reached is None else
                reached / grid_epochs}
    table, asha = pd.DataFrame(rows), searches["ASHA + TPE"]
    args.out.mkdir(parents=True, exist_ok=True)
    reports.drop(columns=[c for c in reports.columns if c.startswith("config/")]).to_csv(
        args.out / "tune_trials.csv", index=False)
    plot(reports, best, target, metric, args.out / "tune.png")
    n = len(searches["grid"].values("hidden")) * len(searches["grid"].values("dropout"))
    md, _ = perf.write_table(
        table, args.out, "tune", "Ray Tune: overhead, and ASHA + TPE against a full grid", prov,
        data=f"{args.dataset}, {args.rows or 'all'} rows per split, max_len {args.max_len}; model {args.model}",
        intro=(f"Grid: {n} configs (widths {args.hidden_values} x dropouts {args.dropout_values}), {args.epochs} "
               f"epochs each. ASHA + TPE: {args.samples} trials choosing from the same values, ASHA grace "
               f"{asha.grace_period} epoch(s), reduction factor {asha.reduction_factor}. {args.concurrent} trials at once, 1 Ray Train worker with 1 CPU each. "
               f"`overhead`: wall time / (sum of the trials' times / {args.concurrent}); a trial's time is from "
               f"its start to its last report (Tune's `time_total_s`). `epochs_to_within`: epochs run by all "
               f"trials, in report order, when the search's best `{metric}` first came within "
               f"{args.within:.0%} of the grid's best ({best:.4f}); `fraction_of_grid_epochs`: that over the "
               f"grid's {grid_epochs} epochs. Every epoch's report: `tune_trials.csv`; the curves: `tune.png`."),
        notes=["Targets: overhead <= 1.15; ASHA + TPE within 1% of the grid's best at <= 30% of its epochs."])
    print(table.to_string(index=False), flush=True)
    print(f"[bench] wrote {md}", flush=True)


if __name__ == "__main__":
    main()
