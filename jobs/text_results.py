"""Every text model on every dataset, trained through Ray Train: the tables and plots of results/text/.

    python jobs/text_results.py                    # all runs of configs/experiments/text.yaml
    python jobs/text_results.py --only drugs       # runs whose name contains "drugs", then the tables
    ray job submit --working-dir . -- python jobs/text_results.py

Each run's figures go to results/text/runs/<name>.json; the tables are rebuilt from all of them,
so a partial re-run updates its rows. Runs are named, so finished ones are reused and cut ones resume.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from seqlab.errors import SeqlabError
from seqlab.storage import seqlab_home
from seqlab.train.driver import init_ray
from seqlab_tools.experiments import (
    classifier_table,
    copy_cards,
    generator_table,
    load_records,
    recognisability_report,
    train,
)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default="configs/experiments/text.yaml", help="experiment list (YAML)")
    p.add_argument("--only", default="", help="run only the runs whose name contains one of these comma-separated "
                                              "texts (e.g. cfpb,sentences)")
    p.add_argument("--storage-path", default=str(seqlab_home() / "runs" / "text"), help="where the runs live")
    p.add_argument("--results-dir", default="results/text", help="where the tables and plots go")
    p.add_argument("--tables-only", action="store_true", help="rebuild the tables from runs/*.json, train nothing")
    args = p.parse_args()
    cfg = yaml.safe_load(Path(args.config).read_text())
    out_dir = Path(args.results_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not args.tables_only:
        init_ray()
        only = [x for x in args.only.split(",") if x] or [""]
        for spec in cfg["runs"] + cfg["generators"]:
            if any(x in spec["name"] for x in only):
                print(f"[seqlab] === {spec['name']}", flush=True)
                train(spec, cfg["common"], args.storage_path, out_dir)
    records = load_records(out_dir)
    copy_cards(records, out_dir)
    classifier_table(records, out_dir, tuned=Path("results/cfpb-lstm/test_metrics.json"))
    if any("nats_per_char" in r["test"] for r in records):
        generator_table(records, out_dir)
        if cfg["recognisability"]["classifier"] in {r["name"] for r in records}:
            try:
                recognisability_report(records, cfg["recognisability"], out_dir)
            except SeqlabError as exc:  # its checkpoints live on another machine: the report made there stays
                print(f"[seqlab] recognisability report kept as it was ({exc})", flush=True)
    print(f"[seqlab] tables in {out_dir}/", flush=True)


if __name__ == "__main__":
    main()
