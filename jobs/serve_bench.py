"""Serving benchmark on loopback, all in one run: results/serving.md (+ .json, .png).

    python jobs/serve_bench.py                      # the CFPB LSTM of results/text (its checkpoint)
    python jobs/serve_bench.py --source <checkpoint, best.json or search folder> --quick
    python jobs/serve_bench.py --long-texts         # step 5 alone; the other figures of serving.md are kept

1. Throughput and latency at concurrency 1, 16 and 64 for (a) Serve with dynamic batching,
   (b) Serve without (max_batch_size 1), (c) the same model behind plain FastAPI + uvicorn and
   (d) (a) with Serve's access log on. (a)-(c) log no line per request, as uvicorn at --log-level
   warning does; (d) shows what Serve's default per-request log lines cost.
2. 10,000 requests at concurrency 64 (batching on): any 5xx?
3. A model replica killed under load (2 replicas, concurrency 16): failed requests, time to recover.
4. 1,000 malformed or hostile requests: all 4xx, and the server still healthy after.
5. Long texts (also on its own: ``--long-texts`` keeps the rest of the .md): one CFPB complaint of the mean
   length per request, at concurrency 1, through each setting of jobs/bench_long_texts.py served in turn
   (MiniLM cut at 128 word pieces against windows of the whole complaint, the LSTM, the baseline).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

from seqlab import registry
from seqlab.provenance import record
from seqlab.serve.options import ServeOptions
from seqlab_tools.cluster import free_port, wait_for
from seqlab_tools.loadtest import hostile_requests, load, send_hostile

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RUN = ROOT / "results" / "text" / "runs" / "cfpb-lstm-word2vec.json"


def texts_for(checkpoint_meta: dict, n: int = 200) -> list[str]:
    """Real test-split texts of the model's dataset when they are on this machine, else a few examples."""
    import pandas as pd
    from pipeline import DEMO_EXAMPLES

    root = Path(checkpoint_meta.get("data", {}).get("root", "/nonexistent"))
    if (root / "test.parquet").exists():
        return pd.read_parquet(root / "test.parquet")["text"].head(n).tolist()
    return DEMO_EXAMPLES


def serve_opts(port: int, registry_root: str, **kw) -> ServeOptions:
    # access_log off: like uvicorn at --log-level warning, no line per request (setup (d) turns it on)
    return ServeOptions(port=port, registry=registry_root, **{"access_log": False, **kw})


def measure(url: str, bodies: list[dict], levels: list[int], counts: dict[int, int]) -> list[dict]:
    rows = []
    for c in levels:
        res = load(url, bodies, c, counts[c], warmup=min(4 * c, 100))
        rows.append(res.row())
        print(f"  c={c:3d}: {res.rps:7.1f} req/s, p50 {res.pct(50):7.2f} ms, p99 {res.pct(99):7.2f} ms, "
              f"statuses {res.statuses}", flush=True)
    return rows


def plain_fastapi(checkpoint_dir: str, port: int) -> subprocess.Popen:
    env = {**os.environ, "SEQLAB_CHECKPOINT": checkpoint_dir}
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--app-dir", str(ROOT / "jobs"), "plain_fastapi:app",
                             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"], env=env,
                            start_new_session=True)
    wait_for(lambda: _ok(f"http://127.0.0.1:{port}/healthz"), 120, "plain FastAPI app")
    return proc


def _ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def replica_kill(url: str, bodies: list[dict], seconds: float, kill_at: float) -> dict:
    """Load at concurrency 16 for ``seconds``; SIGKILL one of the model's two replicas at ``kill_at``."""
    import ray
    from ray import serve
    from ray.util.state import list_actors

    result = {}

    def run_load():
        rate = 200  # requests per second the load could reach is unknown: send until the time is up
        n = int(seconds * rate)
        result["load"] = load(url, bodies, 16, n)

    t = threading.Thread(target=run_load)
    t0 = time.monotonic()
    t.start()
    time.sleep(kill_at)
    address = ray.get_runtime_context().gcs_address

    def model_replicas() -> dict:
        return {a.actor_id: a for a in list_actors(address=address, filters=[("state", "=", "ALIVE")], detail=True)
                if a.class_name.endswith("model-cfpb")}

    before = model_replicas()
    victim = next(iter(before.values()))
    os.kill(victim.pid, signal.SIGKILL)
    killed = time.monotonic()

    def running():  # two live replicas again, one of them new
        now = model_replicas()
        dep = serve.status().applications["seqlab"].deployments["model-cfpb"]
        return len(now) == 2 and set(now) - set(before) and dep.replica_states.get("RUNNING", 0) == 2

    wait_for(running, 120, "a replacement replica", poll=0.25)
    recovered = time.monotonic()
    t.join()
    res = result["load"]
    after_kill = [f for f in res.failures if f[0] >= killed - t0 - 0.5]
    return {"replicas": 2, "concurrency": 16, "requests": res.requests, "wall_s": round(res.wall_s, 1),
            "killed_at_s": round(killed - t0, 1), "victim_pid": victim.pid, "failed": res.requests - res.statuses.get(200, 0),
            "failed_after_kill": len(after_kill), "failures": sorted({f[1] for f in res.failures}),
            "replacement_running_after_s": round(recovered - killed, 1), "statuses": res.row()["statuses"],
            "p99_ms": round(res.pct(99), 1)}


def model_alone(checkpoint_dir: str, texts: list[str], batch: int, repeats: int = 3) -> dict:
    """The model's own time per text in this process, one text at a time against batches of ``batch``:
    the most batching could give if HTTP and Serve cost nothing."""
    from seqlab.tasks import load_predictor

    model = load_predictor(checkpoint_dir, "cpu")
    sample = texts[: 2 * batch]
    model.predict(sample[:batch])  # warm-up

    def ms_per_text(size: int) -> float:
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            for i in range(0, len(sample), size):
                model.predict(sample[i : i + size])
            best = min(best, (time.perf_counter() - t0) / len(sample))
        return best * 1e3

    one, batched = ms_per_text(1), ms_per_text(batch)
    return {"texts": len(sample), "batch": batch, "one_ms": round(one, 2), "batched_ms": round(batched, 2),
            "speedup": round(one / batched, 2)}


def long_texts(port: int, n: int) -> dict:
    """p50/p99 per request through Serve at concurrency 1, ``n`` requests of one complaint of the mean length,
    for every setting of bench_long_texts (untrained models: the cost does not depend on the weights), all
    served by one application, one setting loaded at a time."""
    from bench_long_texts import SETTINGS, complaints, save_untrained
    from ray import serve

    from seqlab.serve.app import start
    from seqlab_tools.experiments import tokens_seen

    frames, _, one, mean_chars = complaints()
    tmp = Path(tempfile.mkdtemp(prefix="seqlab-long-"))
    root, rows = str(tmp / "registry"), []
    for i, (name, spec) in enumerate(SETTINGS.items()):
        registry.promote(str(save_untrained(*spec, frames, tmp / str(i))), f"setting{i}", root)
        start([f"setting{i}"], serve_opts(port, root, max_batch_size=8, batch_wait_timeout_s=0.005))
        res = load(f"http://127.0.0.1:{port}/v1/classify", [{"texts": [one]}], 1, n, warmup=10)
        serve.delete("seqlab")
        rows.append({"setting": name, "tokens_seen": tokens_seen("cfpb", spec[0], spec[2]), "requests": res.requests,
                     "p50_ms": round(res.pct(50), 2), "p99_ms": round(res.pct(99), 2), "statuses": res.row()["statuses"]})
        print(f"  {name}: p50 {rows[-1]['p50_ms']} ms, p99 {rows[-1]['p99_ms']} ms", flush=True)
    serve.shutdown()
    return {"chars": len(one), "mean_chars": round(mean_chars), "rows": rows}


def long_texts_markdown(lt: dict) -> list[str]:
    base = lt["rows"][0]["p50_ms"]
    lines = ["## Long texts: a whole complaint per request", "",
             f"One CFPB test complaint of the mean length of all complaints ({lt['chars']} characters) per request, "
             f"{lt['rows'][0]['requests']} requests at concurrency 1 through Serve (batching on), each setting "
             "served alone; the models are untrained (a forward pass costs the same whatever the weights learned). "
             "A replica reserves one CPU, so its torch computes on one thread (Ray sets OMP_NUM_THREADS from the "
             "CPUs an actor reserves); the model-alone figures use both cores. "
             "`python jobs/serve_bench.py --long-texts`; the model alone, per request and per text of a batch: "
             "[perf/long_texts.md](perf/long_texts.md).", "",
             "| setting | tokens seen (CFPB test) | p50 ms | p99 ms | p50 vs MiniLM cut at 128 | statuses |",
             "|---|---|---|---|---|---|"]
    for r in lt["rows"]:
        lines.append(f"| {r['setting']} | {r['tokens_seen']:.0%} | {r['p50_ms']} | {r['p99_ms']} | "
                     f"{r['p50_ms'] / base:.2f}x | {r['statuses']} |")
    return lines + [""]


def by_setup(out: dict) -> dict:
    """The throughput rows as ``{setup: {concurrency: row}}``."""
    return {s: {r["concurrency"]: r for r in rs} for s, rs in out["throughput"].items()}


def goals(out: dict) -> dict:
    rows = by_setup(out)
    speedup = rows["Serve, batching"][64]["rps"] / rows["Serve, no batching"][64]["rps"]
    plain = rows["plain FastAPI"][1]["p50_ms"]
    ratios = {s: rows[s][1]["p50_ms"] / plain for s in ("Serve, batching", "Serve, no batching")}
    return {"batching_speedup": speedup, "batched_p99_ms": rows["Serve, batching"][64]["p99_ms"],
            "batching_met": speedup >= 5 and rows["Serve, batching"][64]["p99_ms"] <= 50,
            "latency_ratio_c1": ratios, "latency_met": min(ratios.values()) <= 1.3}


def markdown(out: dict) -> str:
    prov = out["provenance"]
    lines = ["# Serving: throughput, latency, faults and hostile input", "",
             f"Command: `{prov['command']}`  ", f"Commit: `{prov['commit']}`  ", f"Hardware: {prov['hardware']}  ",
             f"Versions: {prov['versions']}  ",
             f"Model: `{out['model']['architecture']}` classifier of {out['model']['data']} "
             f"({out['model']['source']}); requests carry one real test-split text each "
             f"({out['model']['mean_chars']:.0f} characters on average).  ",
             "Loopback HTTP; the load generator (aiohttp, closed loop) runs on the same cores as the servers, "
             "so absolute figures are low; compare the rows with each other. No setup logs a line per request "
             "(`seqlab serve --no-access-log`; uvicorn at `--log-level warning`) except \"Serve, batching, access "
             "log\", which has Serve's access log on, its default.", "",
             "## Throughput and latency", "",
             "| setup | concurrency | requests | req/s | p50 ms | p99 ms | statuses |", "|---|---|---|---|---|---|---|"]
    for setup, rows in out["throughput"].items():
        for r in rows:
            lines.append(f"| {setup} | {r['concurrency']} | {r['requests']} | {r['rps']} | {r['p50_ms']} | "
                         f"{r['p99_ms']} | {r['statuses']} |")
    g = out["goals"]
    lines += ["", "![requests/s and p99 against concurrency](serving.png)", "",
              "## Goals", "",
              f"- Batching against no batching at concurrency 64: **{g['batching_speedup']:.2f}×** the throughput "
              f"(goal ≥ 5×), batched p99 **{g['batched_p99_ms']:.1f} ms** (goal ≤ 50 ms): "
              f"{'met' if g['batching_met'] else 'not met'}.",
              f"- Serve against plain FastAPI at concurrency 1 (p50): **{g['latency_ratio_c1']['Serve, no batching']:.2f}×** "
              f"without batching, {g['latency_ratio_c1']['Serve, batching']:.2f}× with it (a lone request waits "
              f"up to the batch timeout) (goal ≤ 1.3×): {'met' if g['latency_met'] else 'not met'}.", ""]
    if "model_alone" in out:  # where the time goes
        m, rows = out["model_alone"], by_setup(out)
        unbatched, batched = 1e3 / rows["Serve, no batching"][64]["rps"], 1e3 / rows["Serve, batching"][64]["rps"]
        lines += [f"Where the time goes: the model alone, in one process, takes **{m['one_ms']} ms** per text one at "
                  f"a time and **{m['batched_ms']} ms** per text in batches of {m['batch']} (**{m['speedup']}×**, "
                  f"{m['texts']} texts, best of 3): the most batching could give if HTTP and Serve cost nothing. "
                  f"At concurrency 64 a request took {unbatched:.1f} ms of the machine's time without batching, "
                  f"{m['one_ms'] / unbatched:.0%} of it in the model, and {batched:.1f} ms with batching, "
                  f"{m['batched_ms'] / batched:.0%} in the model. The rest is paid per request (HTTP parsing, the "
                  f"proxy → gateway → model replica hops, the load generator on the same cores) and batching "
                  f"does not shrink it.", ""]
    if "Serve, batching, access log" in out["throughput"]:
        rows = by_setup(out)
        on, off = rows["Serve, batching, access log"][64]["rps"], rows["Serve, batching"][64]["rps"]
        lines += [f"Serve's access log (on by default: a line per request from the gateway and from the model "
                  f"replica, sent on to the driver): {on} req/s at concurrency 64 with it, {off} without "
                  f"({on / off - 1:+.0%}); `seqlab serve --no-access-log` turns it off.", ""]
    lines += [
              "## 10,000 requests at concurrency 64 (batching on)", "",
              f"{out['sustained']['requests']} requests in {out['sustained']['wall_s']:.1f} s "
              f"({out['sustained']['rps']} req/s, p99 {out['sustained']['p99_ms']} ms); statuses "
              f"{out['sustained']['statuses']}; 5xx or failed connections: **{out['sustained']['server_errors']}**.", "",
              "## A replica killed under load", "",
              f"Two model replicas, concurrency 16; one replica process SIGKILLed {out['kill']['killed_at_s']} s in. "
              f"Failed requests: **{out['kill']['failed']}** of {out['kill']['requests']} "
              f"({', '.join(out['kill']['failures']) or 'none'}); the gateway retries a request whose replica died. "
              f"Serve had a replacement replica running **{out['kill']['replacement_running_after_s']} s** after the "
              f"kill; p99 over the whole run {out['kill']['p99_ms']} ms.", "",
              "## 1,000 malformed or hostile requests", "",
              "| kind | statuses |", "|---|---|"]
    for kind, counts in out["hostile"]["by_kind"].items():
        lines.append(f"| {kind} | {counts} |")
    h = out["hostile"]
    lines += ["", f"All 4xx: **{h['all_4xx']}** ({h['total']} requests). Afterwards `/healthz` answered "
                  f"{h['healthz_after']} and a valid request {h['valid_after']}.", ""]
    if "long_texts" in out:
        lt = out["long_texts"]
        prov = lt.get("provenance", out["provenance"])
        lines += long_texts_markdown(lt) + [f"Measured by `{prov['command']}` at commit `{prov['commit']}` on "
                                            f"{prov['hardware']} ({prov['versions']})."]
    return "\n".join(lines).rstrip("\n") + "\n"


def plot(out: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for setup, rows in out["throughput"].items():
        cs = [r["concurrency"] for r in rows]
        a.plot(cs, [r["rps"] for r in rows], marker="o", label=setup)
        b.plot(cs, [r["p99_ms"] for r in rows], marker="o", label=setup)
    a.set(xscale="log", xlabel="concurrent clients", ylabel="requests/s", title="throughput")
    b.set(xscale="log", yscale="log", xlabel="concurrent clients", ylabel="p99 latency (ms)", title="p99 latency")
    b.axhline(50, color="grey", ls="--", lw=1)
    for ax in (a, b):
        ax.set_xticks([1, 16, 64], ["1", "16", "64"])
        ax.grid(alpha=0.3)
    a.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n", 2)[2])
    p.add_argument("--source", help="checkpoint, best.json or search folder (default: the CFPB LSTM of "
                                    "results/text/runs/cfpb-lstm-word2vec.json)")
    p.add_argument("--quick", action="store_true", help="a tenth of the requests (a smoke run; not for the table)")
    p.add_argument("--max-batch-size", type=int, default=32)
    p.add_argument("--batch-wait-timeout-s", type=float, default=0.005)
    p.add_argument("--out", default=str(ROOT / "results" / "serving.md"))
    p.add_argument("--render", action="store_true", help="only rewrite the .md and .png from the .json of --out")
    p.add_argument("--long-texts", action="store_true", help="only step 5 (long texts): its figures replace the "
                                                             "long-text section of --out, the rest is kept")
    args = p.parse_args(argv)
    if args.long_texts:
        from seqlab.train.driver import init_ray

        target = Path(args.out)
        out = json.loads(target.with_suffix(".json").read_text())
        init_ray()
        out["long_texts"] = {**long_texts(free_port(), 100 // (10 if args.quick else 1)),
                             "provenance": record(["python", "jobs/serve_bench.py",
                                                   *(argv if argv is not None else sys.argv[1:])])}
        target.with_suffix(".json").write_text(json.dumps(out, indent=2))
        target.write_text(markdown(out))
        print(f"wrote {target}", flush=True)
        return out
    if args.render:
        target = Path(args.out)
        out = json.loads(target.with_suffix(".json").read_text())
        out["goals"] = goals(out)
        target.with_suffix(".json").write_text(json.dumps(out, indent=2))
        plot(out, target.with_suffix(".png"))
        target.write_text(markdown(out))
        return out
    from ray import serve

    from seqlab.checkpoint import local_dir, read_meta
    from seqlab.serve.app import start
    from seqlab.train.driver import init_ray

    source = args.source or json.loads(DEFAULT_RUN.read_text())["checkpoint"]
    scale = 10 if args.quick else 1
    counts = {1: 300 // scale, 16: 2000 // scale, 64: 4000 // scale}
    tmp = Path(tempfile.mkdtemp(prefix="seqlab-bench-"))
    root = str(tmp / "registry")
    card = registry.promote(source, "cfpb", root)
    with local_dir(registry.uri(root, "cfpb")) as d:
        meta = read_meta(d)
        checkpoint_dir = str(tmp / "checkpoint")
        import shutil

        shutil.copytree(d, checkpoint_dir)
    texts = texts_for(meta)
    bodies = [{"texts": [t]} for t in texts]
    out = {"provenance": record(["python", "jobs/serve_bench.py", *(argv if argv is not None else sys.argv[1:])]),
           "model": {"architecture": card["model"]["name"], "data": card["data"].get("name"), "source": source,
                     "mean_chars": sum(map(len, texts)) / len(texts)},
           "settings": {"max_batch_size": args.max_batch_size, "batch_wait_timeout_s": args.batch_wait_timeout_s,
                        "counts": counts},
           "throughput": {}}
    init_ray()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    levels = [1, 16, 64]

    print("(a) Serve, dynamic batching", flush=True)
    start(["cfpb"], serve_opts(port, root, max_batch_size=args.max_batch_size,
                                    batch_wait_timeout_s=args.batch_wait_timeout_s))
    out["throughput"]["Serve, batching"] = measure(f"{url}/v1/classify", bodies, levels, counts)

    print("(b) Serve, no batching", flush=True)
    serve.delete("seqlab")  # one setup at a time: both would not fit on a small machine
    start(["cfpb"], serve_opts(port, root, max_batch_size=1, batch_wait_timeout_s=0.0))
    out["throughput"]["Serve, no batching"] = measure(f"{url}/v1/classify", bodies, levels, counts)

    print("(d) Serve, dynamic batching, a log line per request", flush=True)
    serve.delete("seqlab")
    start(["cfpb"], serve_opts(port, root, max_batch_size=args.max_batch_size, access_log=True,
                                    batch_wait_timeout_s=args.batch_wait_timeout_s))
    out["throughput"]["Serve, batching, access log"] = measure(f"{url}/v1/classify", bodies, levels, counts)
    serve.shutdown()

    print("(c) plain FastAPI + uvicorn", flush=True)
    plain_port = free_port()
    proc = plain_fastapi(checkpoint_dir, plain_port)
    try:
        out["throughput"]["plain FastAPI"] = measure(f"http://127.0.0.1:{plain_port}/v1/classify", bodies, levels,
                                                     counts)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait()

    print("the model alone, one text at a time and batched", flush=True)
    out["model_alone"] = model_alone(checkpoint_dir, texts, args.max_batch_size)
    print(f"  {out['model_alone']}", flush=True)

    print("10,000 requests at concurrency 64", flush=True)
    start(["cfpb"], serve_opts(port, root, max_batch_size=args.max_batch_size,
                                    batch_wait_timeout_s=args.batch_wait_timeout_s))
    res = load(f"{url}/v1/classify", bodies, 64, 10_000 // scale)
    out["sustained"] = {**res.row(), "wall_s": res.wall_s, "server_errors": res.server_errors}
    print(f"  {out['sustained']}", flush=True)

    print("a replica killed under load", flush=True)
    serve.delete("seqlab")
    start(["cfpb"], serve_opts(port, root, replicas=2, max_batch_size=args.max_batch_size,
                                    batch_wait_timeout_s=args.batch_wait_timeout_s))
    out["kill"] = replica_kill(f"{url}/v1/classify", bodies, seconds=30 / (scale ** 0.5), kill_at=8 / (scale ** 0.5))
    print(f"  {out['kill']}", flush=True)

    print("1,000 hostile requests", flush=True)
    cases = hostile_requests(1000 // scale, seed=0)
    by_kind = send_hostile(url, cases)
    healthz = requests.get(f"{url}/healthz", timeout=30).status_code
    valid = requests.post(f"{url}/v1/classify", json=bodies[0], timeout=30).status_code
    all_4xx = all(s.isdigit() and 400 <= int(s) < 500 for counts_ in by_kind.values() for s in counts_)
    out["hostile"] = {"total": len(cases), "by_kind": by_kind, "all_4xx": all_4xx, "healthz_after": healthz,
                      "valid_after": valid}
    print(f"  all 4xx: {all_4xx}; {by_kind}", flush=True)
    serve.shutdown()

    print("long texts: one complaint of the mean length per request", flush=True)
    out["long_texts"] = long_texts(port, 100 // scale)

    out["goals"] = goals(out)
    target = Path(args.out)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.with_suffix(".json").write_text(json.dumps(out, indent=2))
    plot(out, target.with_suffix(".png"))
    target.write_text(markdown(out))
    print(f"wrote {target}", flush=True)
    return out


if __name__ == "__main__":
    main()
