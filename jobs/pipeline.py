"""The main job, end to end: data, a classical baseline, Ray Train, Ray Tune + Optuna, test figures, Ray Serve,
one HTTP request.

    python jobs/pipeline.py            # about 10 minutes on 2 CPU cores, local Ray started here (make demo)
    python jobs/pipeline.py --full     # full-size search
    ray job submit --working-dir . --runtime-env jobs/runtime_env.yaml -- python jobs/pipeline.py

It puts library pieces together: ``seqlab data``, ``seqlab train`` (the TF-IDF + linear SVM
baseline, then the LSTM), ``seqlab tune``, ``seqlab registry promote``, ``seqlab serve``, then a
request over HTTP. Every option of those commands applies (``--help``); the baseline keeps its own
defaults.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import time
import urllib.error
import urllib.request

from seqlab import registry
from seqlab.cli import add_verbose, cmd_data, cmd_train, cmd_tune, log, main
from seqlab.config import ModelConfig, add_arguments, chosen_model, from_arguments, identity_of
from seqlab.console import story
from seqlab.errors import SeqlabError
from seqlab.serve.app import start
from seqlab.serve.options import add_serve_arguments, serve_options
from seqlab.storage import join

DEMO_EXAMPLES = [
    "I have disputed this account on my credit report three times and the bureau keeps reporting it as late.",
    "A collector keeps calling me at work about a debt I do not owe and threatened to sue me.",
    "My mortgage servicer lost my payment and now says my loan is in default and charged fees.",
]
SECTIONS = ["data", "model", "train", "search"]
# Smaller settings so the demo finishes in about 10 minutes on 2 CPU cores; --full lifts them.
DEMO_DEFAULTS = {"data": {"max_len": 256},
                 "train": {"epochs": 4, "name": "demo-cfpb-lstm"},
                 "search": {"num_samples": 4, "hidden_max": 128, "search_name": "demo-cfpb-lstm-search",
                            "results_dir": "results/demo"}}
FULL_DEFAULTS = {"train": {"epochs": 8, "name": "cfpb-lstm"},
                 "search": {"num_samples": 16, "hidden_max": 512, "search_name": "cfpb-lstm-search"}}


def http_json(method: str, url: str, body: dict | None = None, timeout: float = 60) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def build_parser(model: str | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pipeline.py", description=__doc__.split("\n")[0],
                                epilog="Options may also come from --config FILE.yaml (sections data, model, train, "
                                       "search); flags win.")
    p.add_argument("--full", action="store_true",
                   help="full-size run: all data, 8 epochs, 16 trials over widths 32-512 (hours on 2 CPU cores)")
    p.add_argument("--keep-serving", action="store_true", help="leave the HTTP app running at the end")
    add_arguments(p, SECTIONS, model)
    add_verbose(p)
    add_serve_arguments(p)
    return p


def parse(argv: list[str]) -> tuple[argparse.Namespace, dict]:
    args = build_parser(chosen_model(argv)).parse_args(argv)
    args.argv = ["python", "jobs/pipeline.py", *argv]
    # the presets apply wherever no flag was given
    for section, values in (FULL_DEFAULTS if args.full else DEMO_DEFAULTS).items():
        for k, v in values.items():
            if not hasattr(args, f"{section}.{k}"):
                setattr(args, f"{section}.{k}", v)
    return args, from_arguments(args, SECTIONS)


def run(argv: list[str]) -> dict:
    """data -> Ray Train -> Ray Tune + Optuna -> test figures -> registry -> Ray Serve -> HTTP."""
    args, cfg = parse(argv)
    t0 = time.perf_counter()
    # Run names carry a hash of the settings, so changed settings start new runs and the same
    # settings resume (or reuse) the finished ones.
    settings = {s: identity_of(cfg[s]) for s in SECTIONS}
    tag = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
    # the baseline: the same data and run settings, the TF-IDF + linear SVM model with its defaults
    cfg["baseline"] = {**cfg, "model": ModelConfig(model="tfidf-linear"),
                       "train": dataclasses.replace(cfg["train"], name=f"{cfg['train'].name}-tfidf-linear-{tag}")}
    cfg["train"] = dataclasses.replace(cfg["train"], name=f"{cfg['train'].name}-{tag}")
    cfg["search"] = dataclasses.replace(cfg["search"], search_name=f"{cfg['search'].search_name}-{tag}")
    # one log for the whole demo, in its training run's folder
    with story(join(cfg["train"].resolved_storage(), cfg["train"].name), "pipeline", verbose=args.verbose):
        return _stages(cfg, args, t0)


def _stages(cfg: dict, args, t0: float) -> dict:
    log("1/6 data")
    cmd_data(cfg, args)
    log("2/6 baseline: TF-IDF of character n-grams + linear SVM (scikit-learn, one pass)")
    baseline = cmd_train(cfg["baseline"], args)
    log(f"3/6 train ({cfg['train'].num_workers} workers, {cfg['train'].epochs} epochs)")
    trained = cmd_train(cfg, args)
    log(f"4/6 search ({cfg['search'].num_samples} trials, Optuna TPE + ASHA)")
    tuned = cmd_tune(cfg, args)
    opts = serve_options(args)
    card = registry.promote(str(tuned["out_dir"]), "demo-cfpb-lstm", opts.registry or registry.default_root())
    log(f"5/6 promote the best trial as {card['name']}:{card['version']} and serve it")
    url = start([f"{card['name']}:{card['version']}"], opts)
    log(f"6/6 POST {url}/v1/classify")
    status, answer = http_json("POST", f"{url}/v1/classify", {"texts": DEMO_EXAMPLES})
    if status != 200:
        raise SeqlabError(f"the served model answered HTTP {status}: {answer}")
    for text, pred in zip(DEMO_EXAMPLES, answer["predictions"]):
        top = max(pred["probabilities"].values())
        log(f"  {pred['label']!r} (p={top:.2f})  <- {text[:70]}...")
    bad_status, bad = http_json("POST", f"{url}/v1/classify", {"texts": []})
    log(f"a bad request gets HTTP {bad_status}: {bad.get('error')}")
    log(f"done in {time.perf_counter() - t0:.0f}s: test macro-F1 of the baseline (TF-IDF + linear SVM) "
        f"{baseline['test']['macro_f1']:.4f}, the train run {trained['test']['macro_f1']:.4f}, the tuned LSTM "
        f"{tuned['test']['macro_f1']:.4f}; results in {tuned['out_dir']}")
    if not args.keep_serving:
        from ray import serve

        serve.shutdown()
    return {"answer": answer, "bad_status": bad_status, "tuned": tuned, "trained": trained, "baseline": baseline}


if __name__ == "__main__":
    main(run_fn=run)
