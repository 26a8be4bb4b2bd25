"""Fault figures: each fault injected into a real run on a real multi-node cluster, against a fault-free run.

    python jobs/reliability.py              # about 10 minutes on 2 CPU cores -> results/reliability.md

Starts a cluster laid out like cluster.yaml with ``ray start`` (token auth; a head with no CPUs,
two worker nodes, one declaring a GPU) and SeaweedFS as the S3 store, trains the same 3-epoch run
(2 workers, one per worker node, seed 0, checkpoints in S3) once without a fault and once per
fault, interrupts a search and resumes it (its Optuna study in SQLite and in PostgreSQL), then runs
the README's cluster sequence (train, search, promote, serve-config, serve deploy) and promotes
and redeploys a new version under load. Time lost is the faulted run's wall time minus the
fault-free run's; work repeated is the training done after the last checkpoint before the fault,
in epochs.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from seqlab import provenance
from seqlab_tools import faults
from seqlab_tools.cluster import LocalCluster, S3Server

FAULTS = ["kill-worker", "stop-node", "kill-driver", "restart-s3"]
RUNS = "s3://seqlab/runs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="results/reliability.md", help="Markdown report (a .json next to it)")
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="seqlab-reliability-")
    s3 = S3Server(f"{root}/s3").start()
    os.environ.update(s3.env())
    cluster = LocalCluster(f"{root}/ray", workers=2, gpus={"worker2": 1}, env=s3.env())
    rows, prov = [], provenance.record(["python", "jobs/reliability.py", *sys.argv[1:]])
    try:
        cluster.start()
        base = faults.run_fault(cluster, "none", "baseline", RUNS)
        print(f"[reliability] fault-free run: {base.status} in {base.wall_s:.0f}s", flush=True)
        for fault in FAULTS:
            out = faults.run_fault(cluster, fault, fault, RUNS, s3=s3)
            same = all(abs(out.final.get(k, float("nan")) - base.final[k]) <= 1e-6
                       for k in ("train_loss", "val_loss", "val_macro_f1"))
            checked = faults.verify_checkpoints(f"{RUNS}/{fault}")
            rows.append({"fault": fault, "injected": out.injected, "status": out.status, "jobs": len(out.jobs),
                         "wall_s": round(out.wall_s, 1), "time_lost_s": round(out.wall_s - base.wall_s, 1),
                         "resumed_at_epoch": sorted(set(out.resumed_from)),
                         "epochs_repeated": round(out.epochs_repeated, 2) if out.epochs_repeated is not None else None,
                         "restarts": out.final.get("restarts"), "checkpoints": checked,
                         "val_macro_f1": out.final.get("val_macro_f1"), "matches_fault_free": same})
            print(f"[reliability] {fault}: {rows[-1]}", flush=True)
        searches = [interrupted_search(cluster, backend, root) for backend in ("sqlite", "postgresql")]
        redeploy = redeploy_under_load(cluster, s3, root)
    finally:
        cluster.stop()
        s3.stop()
    write(Path(args.out), base, rows, searches, redeploy, prov)


def redeploy_under_load(cluster: LocalCluster, s3: S3Server, root: str) -> dict:
    """The README's cluster sequence, then its last three commands again (promote v2, serve-config,
    serve deploy) while a client sends requests one after another (at most 20 a second)."""
    from seqlab_tools import readme

    seq = readme.run_sequence(cluster, s3, Path(root) / "user")
    try:
        out = faults.redeploy_under_load(seq["url"], seq["key"],
                                         lambda: [readme.run(c, env=seq["env"]) for c in seq["commands"][2:]])
    finally:
        readme.stop_serving(seq["env"])
    print(f"[reliability] promote and redeploy under load: {out}", flush=True)
    return out


def interrupted_search(cluster: LocalCluster, backend: str, root: str, samples: int = 4, stop_after: int = 2) -> dict:
    """Stop a search job once ``stop_after`` trials are complete, submit it again: its Optuna study in
    SQLite (the embedded default) or in a real PostgreSQL server (pgserver's binaries)."""
    server = None
    if backend == "postgresql":
        import pgserver

        server = pgserver.get_server(f"{root}/pg", cleanup_mode="stop")
        study = server.get_uri()
    else:
        study = f"sqlite:///{root}/study.db"
    try:
        t0 = time.monotonic()
        search = faults.interrupted_search(cluster, f"search-{backend}", RUNS, study, f"s3://seqlab/results-{backend}",
                                           samples=samples, stop_after=stop_after)
    finally:
        if server is not None:
            server.cleanup()
    complete = [t for t in search["trials"] if t.state.name == "COMPLETE"]
    kept = all(next(t for t in search["trials"] if t.number == n).datetime_complete == v[2]
               for n, v in search["before"].items())
    row = {"study": backend, "status": search["status"], "samples": samples, "stopped_after": len(search["before"]),
           "interrupted_at_s": round(search["interrupted_at_s"]), "wall_s": round(time.monotonic() - t0, 1),
           "complete_trials": len(complete), "earlier_trials_kept": kept,
           "best_value": max(t.value for t in complete)}
    print(f"[reliability] stop-search ({backend}): {row}", flush=True)
    return row


def write(path: Path, base, rows: list[dict], searches: list[dict], redeploy: dict, prov: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".json").write_text(json.dumps({"baseline": {"wall_s": base.wall_s, "final": base.final},
                                                     "faults": rows, "searches": searches, "redeploy": redeploy,
                                                     **prov}, indent=2, default=str))
    lines = ["# Reliability: faults injected into real runs", "",
             "One 3-epoch run (CFPB, 4,000 rows, LSTM 128, 2 Ray Train workers, one per worker node, seed 0, "
             "checkpoints every epoch in S3), trained on a Ray cluster started with `ray start` and laid out "
             "like `cluster.yaml` (token authentication, a head with no CPUs, two worker nodes with their own "
             "home folders and addresses, one declaring a GPU) with SeaweedFS as the S3 store. Each fault hits "
             "epoch 2, after the epoch-1 checkpoint. `--max-failures 2`.", "",
             f"Fault-free run: {base.status}, {base.wall_s:.0f}s wall (including job start-up), final "
             f"val macro-F1 {base.final['val_macro_f1']:.4f}, epoch {base.epoch_s:.1f}s.", "",
             "| fault | how it was injected | outcome | time lost | resumed at epoch | work repeated | "
             "final metrics = fault-free run |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        outcome = r["status"].lower() + (f", after {r['jobs']} submissions" if r["jobs"] > 1 else "") + \
            f", {r['restarts']} restart(s)"
        lines.append(f"| {r['fault']} | {r['injected']} | {outcome} | {r['time_lost_s']:+.0f}s | "
                     f"{', '.join(map(str, r['resumed_at_epoch'])) or '-'} | {r['epochs_repeated']} epoch | "
                     f"{'yes (to 1e-6)' if r['matches_fault_free'] else 'no'} |")
    lines += ["", "Interrupted search: 4 trials, one at a time, Optuna TPE and ASHA, on 600 rows for 2 epochs "
              "(small on purpose: the point is what happens to the trials, not their scores). `ray job stop` "
              "on the search job once 2 trials were complete, then the same search submitted again:", "",
              "| Optuna study in | stopped at | outcome | complete trials | trials from before the stop kept "
              "(value and completion time, not run again) | best val macro-F1 | wall |", "|---|---|---|---|---|---|---|"]
    for s in searches:
        lines.append(f"| {'SQLite file (default)' if s['study'] == 'sqlite' else 'PostgreSQL 16 server'} | "
                     f"{s['interrupted_at_s']}s, {s['stopped_after']} of {s['samples']} trials complete | "
                     f"{s['status'].lower()} | {s['complete_trials']} | {'yes' if s['earlier_trials_kept'] else 'no'} "
                     f"| {s['best_value']:.4f} | {s['wall_s']:.0f}s |")
    r = redeploy
    lines += ["", "Promote and redeploy under load: the README's cluster sequence (train, search, promote `cfpb`, "
              "`serve-config`, `serve deploy`, API keys on), then `seqlab registry promote` of version 2 and the same "
              "`serve-config` and `serve deploy` again while a client sends classify requests one after another (at most 20 a second):", "",
              "| requests | failed | versions answered, in order | ever back to an older one | first answer of "
              "the new version | redeploy commands took |", "|---:|---:|---|---|---|---|",
              f"| {r['requests']} | {r['failed']} | {' → '.join(r['versions_in_order'])} | "
              f"{'yes' if r['went_back'] else 'no'} | {r['switch_after_s']}s after the promote began | "
              f"{r['redeploy_s']}s |"]
    lines += ["", "Checkpoints after each fault (checksums in `meta.json` checked for every checkpoint folder):", ""]
    lines += [f"- {r['fault']}: {r['checkpoints']}" for r in rows]
    lines += ["", "Work repeated is the training done after the last checkpoint before the fault (checkpoints are "
              "per epoch, so it is always under one epoch); time lost also counts failure detection, the "
              "worker-group restart and, for the driver, the second job's start-up.", "",
              provenance.markdown(prov), ""]
    path.write_text("\n".join(lines))
    print(f"[reliability] wrote {path}", flush=True)


if __name__ == "__main__":
    main()
