"""Entity-mention models x datasets, 5-fold cross-validated through Ray Train: results/entities/.

    python jobs/entity_results.py                    # all runs of configs/experiments/entities.yaml
    python jobs/entity_results.py --only triggers    # runs whose name contains "triggers", then the tables
    python jobs/entity_results.py --tables-only      # rebuild the tables from runs/*.json
    ray job submit --working-dir . -- python jobs/entity_results.py

Each run's figures go to results/entities/runs/<name>.json; finished runs are skipped, so an
interrupted job picks up where it stopped. Two copies may run at once (``--shard 0/2``, ``1/2``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from seqlab.errors import SeqlabError
from seqlab.storage import seqlab_home
from seqlab.train.driver import init_ray
from seqlab_tools.entity_report import attention_figure, load, runs_for, write_tables
from seqlab_tools.experiments import copy_cards, train


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default="configs/experiments/entities.yaml", help="experiment list (YAML)")
    p.add_argument("--only", default="", help="comma-separated texts; run only runs whose name contains one")
    p.add_argument("--shard", default="0/1", help="i/n: run every n-th of the runs, starting at i")
    p.add_argument("--storage-path", default=str(seqlab_home() / "runs" / "entities"), help="where the runs live")
    p.add_argument("--results-dir", default="results/entities", help="where the tables and figures go")
    p.add_argument("--tables-only", action="store_true", help="rebuild the tables from runs/*.json, train nothing")
    args = p.parse_args()
    cfg = yaml.safe_load(Path(args.config).read_text())
    out_dir = Path(args.results_dir)
    (out_dir / "runs").mkdir(parents=True, exist_ok=True)
    if not args.tables_only:
        init_ray()
        only = [x for x in args.only.split(",") if x] or [""]
        i, n = (int(x) for x in args.shard.split("/"))
        todo = [r for r in runs_for(cfg) if any(x in r["name"] for x in only)][i::n]
        for k, spec in enumerate(todo):
            if (out_dir / "runs" / f"{spec['name']}.json").exists():
                continue
            print(f"[seqlab] === {spec['name']} ({k + 1}/{len(todo)})", flush=True)
            train(spec, cfg["common"], args.storage_path, out_dir)
    df = load(out_dir)
    copy_cards([{"dataset": d} for d in sorted(set(df["dataset"]))], out_dir)
    write_tables(df, cfg, out_dir)
    att = cfg["attention"]
    run = df[(df["dataset"] == att["dataset"]) & (df["model"] == cfg["embeddings"]["model"]) & (df["fold"] == "0")
             & (df["embeddings"] == "random") & df["train_domain"].isna()]
    if len(run):
        from seqlab.config import DataConfig
        from seqlab.data.select import load_split, prepare_data

        data_cfg = DataConfig(dataset=att["dataset"], fold=0)
        test = load_split(prepare_data(data_cfg), "test", data_cfg)
        sample = test.drop_duplicates("text").sample(att["sentences"], random_state=0)
        try:
            attention_figure(run.iloc[0]["checkpoint"], sample, out_dir / "attention.png",
                             f"LSTM+CA attention over context tokens ({att['dataset']}, fold 0 test; mention in bold)")
        except SeqlabError as exc:  # its checkpoint lives on another machine: the figure made there stays
            print(f"[seqlab] attention figure kept as it was ({exc})", flush=True)
    print(f"[seqlab] tables in {out_dir}/", flush=True)


if __name__ == "__main__":
    main()
