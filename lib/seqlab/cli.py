"""``seqlab data|models|train|tune|registry|serve|predict|generate|sample|export|demo``: a thin layer over the library.

Every subcommand prints ``seqlab: error: ...`` (one line, exit 2) for bad input.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
import time
from pathlib import Path

from seqlab.config import add_arguments, from_arguments
from seqlab.errors import SeqlabError

EPILOG = "Options may also come from --config FILE.yaml (sections data, model, train, search); flags win."


def _log(msg: str) -> None:
    print(f"[seqlab] {msg}", flush=True)


def cmd_data(cfg: dict, args) -> dict:
    from seqlab.runner import prepare_data

    prepared = prepare_data(cfg["data"], molecules=getattr(args, "molecules", False))
    _log(f"{prepared.name}: {prepared.card['counts']} -> {prepared.root}")
    _log(f"dataset card: {prepared.root / 'README.md'}")
    return {"root": str(prepared.root), "card": prepared.card}


def cmd_models(cfg: dict, args) -> dict:
    from seqlab.models import MODELS

    for name, e in MODELS.items():
        print(f"{name:13} {e.task:9} {e.summary}\n{'':13} options: {', '.join(e.options())}", flush=True)
    return {"models": sorted(MODELS)}


def _evaluate_test(checkpoint_path: str, data_cfg) -> dict:
    from seqlab.checkpoint import local_dir
    from seqlab.predict import load_predictor
    from seqlab.runner import load_split, prepare_data

    with local_dir(checkpoint_path) as d:
        model = load_predictor(d)  # a molecule generator adds reconstruction and sample quality
        molecules = model.meta["task"] == "molecule"
        return model.evaluate(load_split(prepare_data(data_cfg, molecules=molecules), "test", data_cfg))


def _headline(metrics: dict) -> str:
    keys = [k for k in ("accuracy", "macro_f1", "nats_per_char", "bits_per_char", "char_accuracy", "recon", "kl",
                        "reconstruction", "valid", "unique") if k in metrics]
    return ", ".join(f"{k.replace('_', ' ')} {metrics[k]:.4f}" for k in keys)


def cmd_train(cfg: dict, args) -> dict:
    from seqlab.runner import best_checkpoint_path, fit, init_ray, prepare_inputs

    inputs = prepare_inputs(cfg["data"], cfg["model"])
    init_ray()
    t0 = time.perf_counter()
    result = fit(inputs, cfg["model"], cfg["train"])
    best = best_checkpoint_path(result, inputs["task"])
    test = _evaluate_test(best, cfg["data"])
    restarts = int(result.metrics.get("restarts", 0))
    _log(f"run {cfg['train'].name}: {result.metrics.get('epoch')} epochs in {time.perf_counter() - t0:.0f}s"
         f"{f' ({restarts} restarts from a checkpoint)' if restarts else ''}; best checkpoint {best}")
    _log(f"test {_headline(test)} (n={test['n']})")
    return {"checkpoint": best, "metrics": result.metrics, "test": test, "path": result.path, "task": inputs["task"]}


def cmd_tune(cfg: dict, args) -> dict:
    from seqlab import provenance
    from seqlab.predict import model_label
    from seqlab.runner import init_ray, prepare_inputs
    from seqlab.models import entry
    from seqlab.search import check_searchable, objective, open_study_storage, run_search, summarise, write_results
    from seqlab.storage import is_remote, join, staged_dir

    check_searchable(cfg["model"].model)
    metric, mode = objective(entry(cfg["model"].model).task, cfg["search"], cfg["train"])
    if cfg["search"].study_storage and not cfg["search"].grid:
        open_study_storage(cfg["search"].study_storage)  # unreachable: one line now, before Ray starts
    inputs = prepare_inputs(cfg["data"], cfg["model"])
    init_ray()
    t0 = time.perf_counter()
    grid = run_search(inputs, cfg["model"], cfg["train"], cfg["search"])
    wall = time.perf_counter() - t0
    summary = summarise(grid, cfg["train"].epochs, metric, mode)
    results = join(cfg["search"].results_dir, model_label(inputs["card"], cfg["model"].model))
    prov = provenance.record(getattr(args, "argv", None))
    with staged_dir(results) as out_dir:  # an s3:// results_dir gets the files when the block ends
        best = write_results(summary, out_dir, metric, {"search": cfg["search"].search_name, "data": inputs["card"],
                                                        "search_wall_time_s": round(wall, 1), **prov})
        _log(f"search {cfg['search'].search_name}: {len(summary)} trials in {wall:.0f}s -> {results}/search.csv")
        print(summary.drop(columns=["checkpoint"]).to_string(index=False), flush=True)
        test = _evaluate_test(best["checkpoint"], cfg["data"])
        write_test_report(out_dir, best, test, cfg, prov)
        card = Path(inputs["card"]["root"]) / "README.md"
        (out_dir / "dataset_card.md").write_text(card.read_text())
    _log(f"best trial {best['trial']}: {metric} {best[metric]:.4f}; test {_headline(test)}")
    return {"best": best, "test": test, "summary": summary, "out_dir": results if is_remote(results) else out_dir}


def write_test_report(out_dir: Path, best: dict, test: dict, cfg: dict, prov: dict) -> None:
    from seqlab import provenance

    metric = best["metric"]
    report = {"best_trial": best["trial"], "checkpoint": best["checkpoint"], "hidden": best["hidden"],
              "dropout": best["dropout"], metric: best[metric], "test": test,
              "data": best["data"], "model": dataclasses.asdict(cfg["model"]),
              "train": dataclasses.asdict(cfg["train"]),
              **prov}
    (out_dir / "test_metrics.json").write_text(json.dumps(report, indent=2))
    rows = "\n".join(f"| test {k.replace('_', ' ')} | {v:.4f} |" for k, v in test.items()
                     if isinstance(v, float) and k != "loss")
    per_class = ""
    if "per_class_f1" in test:
        per_class = "Per-class F1:\n\n| class | F1 |\n|---|---:|\n" + "\n".join(
            f"| {lab} | {f1:.3f} |" for lab, f1 in test["per_class_f1"].items()) + "\n\n"
    (out_dir / "test_metrics.md").write_text(f"""# {best['data']['name']}: tuned {cfg['model'].model} on the test split

| metric | value |
|---|---:|
{rows}
| test examples | {test['n']} |
| best trial | `{best['trial']}` (hidden {best['hidden']}, dropout {best['dropout']}) |
| its {metric.replace('_', ' ')} | {best[metric]:.4f} (epoch {best['best_epoch']}) |
| trials / search wall time | see `search.csv` / {best['search_wall_time_s']} s |

{per_class}How it was made:
{provenance.markdown(prov)}
- Data: `{best['data']['name']}` (artifact sha256 `{best['data']['sha256']}`), {best['data']['split_rule']};
  labels kept: {best['data'].get('keep_labels') or 'all'}; row limit per split: {best['data']['limit']}
""")


def _http_json(method: str, url: str, body: dict | None = None, timeout: float = 60) -> tuple[int, dict]:
    import urllib.error
    import urllib.request

    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def serve_options(args) -> dict:
    """``build_app`` options from the serve flags (absent ones keep their defaults)."""
    names = ("max_texts", "max_chars", "max_batch_size", "batch_wait_timeout_s", "max_body_bytes", "api_keys_file",
             "min_replicas", "max_replicas", "target_ongoing_requests", "gpus_per_replica", "cpus_per_replica",
             "access_log")
    out = {k: getattr(args, k) for k in names if getattr(args, k, None) is not None}
    out["num_replicas"] = getattr(args, "replicas", 1)
    return out


def start_serve(source: str | list[str], args) -> str:
    """Serve a checkpoint (a path or URI) or registry models (a list of ``name[:version]``) on a local
    Ray (or ``RAY_ADDRESS``); returns the base URL once every model answers."""
    from ray import serve

    from seqlab.runner import init_ray
    from seqlab.serve import build_app

    if isinstance(source, list):
        from seqlab import registry

        chosen = {"models": source, "registry": getattr(args, "registry", None) or registry.default_root()}
        for ref in source:
            registry.card(chosen["registry"], ref)  # a bad reference fails here, before Ray starts
    else:
        chosen = {"checkpoint": source}
    init_ray()
    app = build_app({**chosen, **serve_options(args)})  # after Ray: replicas get a CPU share that fits
    serve.start(http_options={"host": args.host, "port": args.port})
    serve.run(app, name="seqlab", route_prefix="/")
    return f"http://{'127.0.0.1' if args.host in ('0.0.0.0', '::') else args.host}:{args.port}"


def _block(url: str, args) -> None:
    _log(f"serving at {url}: try the models at {url}/ (API schema: {url}/docs); Ctrl-C stops")
    if args.no_block:
        return
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        from ray import serve

        serve.shutdown()


def cmd_serve(cfg: dict, args) -> dict:
    from seqlab.serve import resolve_checkpoint

    if bool(args.checkpoint) == bool(args.models):
        raise SeqlabError("give either --models name[:version],... (from the registry) or --checkpoint PATH")
    source = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else resolve_checkpoint(
        args.checkpoint)
    url = start_serve(source, args)
    _block(url, args)
    return {"url": url}


def cmd_registry(cfg: dict, args) -> dict:
    from seqlab import registry

    root = args.registry or registry.default_root()
    if args.action == "promote":
        card = registry.promote(args.source, args.name, root, metric=args.metric, mode=args.mode)
        how = card["promotion"]
        picked = (f"trial {how['trial']} ({how['metric']} {how['value']:.4f}, best of {how['trials_compared']})"
                  if "trial" in how else f"checkpoint {card['checkpoint']}")
        _log(f"promoted {picked} as {card['name']}:{card['version']} in {root}")
        if args.serve:
            url = start_serve([f"{card['name']}:{card['version']}"], args)
            _block(url, args)
            return {"card": card, "url": url}
        return {"card": card}
    if args.action == "list":
        rows = registry.listing(root)
        if not rows:
            _log(f"registry {root} is empty; add a model with: seqlab registry promote <search folder> --name NAME")
        for r in rows:
            value = "" if r["value"] is None else f"{r['metric']} {r['value']:.4f}"
            print(f"{r['name']:24} v{r['version']:<4} ({r['versions']} version{'s' * (r['versions'] > 1)})  "
                  f"{r['task']:9} {r['model']:14} {value:24} {r['promoted_at']}", flush=True)
        return {"models": rows}
    if args.action == "show":
        card = registry.card(root, args.ref)
        print(json.dumps(card, indent=2), flush=True)
        return {"card": card}
    text = serve_config(args, root)  # serve-config
    if args.out:
        Path(args.out).write_text(text)
        _log(f"wrote {args.out}: serve run {args.out} (this machine) or serve deploy {args.out} (a cluster)")
    else:
        print(text, end="", flush=True)
    return {"yaml": text}


def serve_config(args, root: str) -> str:
    """A Serve config file (``serve run``/``serve deploy``) for registry models, with every model's
    deployment listed so its replicas, autoscaling and GPUs can be tuned by name."""
    import yaml

    from seqlab import registry
    from seqlab.provenance import git_commit
    from seqlab.serve import deployment_name, max_ongoing

    refs = [registry.Ref.parse(m) for m in args.models.split(",") if m.strip()]
    for ref in refs:
        registry.card(root, ref)  # every model exists, else a clear error now
    options = serve_options(args)
    options.pop("num_replicas")
    autoscaling = {"min_replicas": args.min_replicas or 1, "max_replicas": args.max_replicas or 1,
                   "target_ongoing_requests": args.target_ongoing_requests or 16}
    deployments = [{"name": "Gateway", "num_replicas": 1, "max_ongoing_requests": 512}]
    batch = args.max_batch_size
    for ref in refs:
        deployments.append({"name": deployment_name(str(ref)), "max_ongoing_requests": max_ongoing(batch),
                            "autoscaling_config": autoscaling,
                            "ray_actor_options": {"num_cpus": args.cpus_per_replica or 1.0,
                                                  "num_gpus": float(args.gpus_per_replica or 0)}})
    app_args = {"models": [str(r) for r in refs], "registry": root, **options,
                "min_replicas": autoscaling["min_replicas"], "max_replicas": autoscaling["max_replicas"],
                "target_ongoing_requests": autoscaling["target_ongoing_requests"]}
    config = {"proxy_location": "EveryNode", "http_options": {"host": args.host, "port": args.port},
              "applications": [{"name": "seqlab", "route_prefix": "/", "import_path": "seqlab.serve:build_app",
                                "args": app_args, "deployments": deployments}]}
    from ray.serve.schema import ServeDeploySchema

    ServeDeploySchema.model_validate(config)  # what serve run/deploy will check
    header = (f"# Serve config for seqlab registry models; made by: seqlab registry serve-config --models "
              f"{args.models} (commit {git_commit()}).\n# Run with `serve run FILE` or `serve deploy FILE`.\n")
    return header + yaml.safe_dump(config, sort_keys=False)


def cmd_predict(cfg: dict, args) -> dict:
    from seqlab.checkpoint import local_dir
    from seqlab.predict import TextClassifier
    from seqlab.serve import resolve_checkpoint

    texts = list(args.texts)
    if args.file:
        texts += [line.rstrip("\n") for line in Path(args.file).read_text().splitlines() if line.strip()]
    if not texts or any(not t.strip() for t in texts):
        raise SeqlabError("give one or more non-empty texts, as arguments or with --file (one per line)")
    with local_dir(resolve_checkpoint(args.checkpoint)) as d:
        preds = TextClassifier(d).predict(texts)
    for text, p in zip(texts, preds):
        print(json.dumps({"text": text[:80], **p}))
    return {"predictions": preds}


def cmd_generate(cfg: dict, args) -> dict:
    from seqlab.checkpoint import local_dir
    from seqlab.predict import TextGenerator
    from seqlab.serve import resolve_checkpoint

    if args.temperature <= 0 or args.length < 1 or args.n < 1:
        raise SeqlabError("--temperature must be > 0, --length and --n >= 1")
    with local_dir(resolve_checkpoint(args.checkpoint)) as d:
        texts = TextGenerator(d).generate(category=args.category, prompt=args.prompt, length=args.length,
                                          temperature=args.temperature, n=args.n, seed=args.seed)
    for text in texts:
        print(json.dumps({"category": args.category, "text": text}), flush=True)
    return {"texts": texts}


def cmd_sample(cfg: dict, args) -> dict:
    from seqlab import chem
    from seqlab.checkpoint import local_dir
    from seqlab.predict import MoleculeGenerator
    from seqlab.serve import resolve_checkpoint

    if args.temperature <= 0 or not 1 <= args.n <= 100_000:
        raise SeqlabError("--temperature must be > 0 and --n within 1..100000")
    with local_dir(resolve_checkpoint(args.checkpoint)) as d:
        smiles = MoleculeGenerator(d).sample(args.n, temperature=args.temperature, seed=args.seed)
    valid = [chem.canonical(s) is not None for s in smiles]
    for s, ok in zip(smiles, valid):
        print(json.dumps({"smiles": s, "valid": ok}), flush=True)
    _log(f"{sum(valid)} of {len(smiles)} valid ({chem.uniqueness(smiles, None):.3f} unique among the valid)")
    if args.grid and any(valid):
        chem.grid_png([s for s, ok in zip(smiles, valid) if ok][:48], Path(args.grid))
        _log(f"drawn into {args.grid}")
    elif args.grid:
        _log(f"no valid molecule to draw; {args.grid} not written")
    return {"smiles": smiles, "valid": valid}


def cmd_export(cfg: dict, args) -> dict:
    from seqlab.checkpoint import local_dir
    from seqlab.predict import Predictor
    from seqlab.serve import resolve_checkpoint

    with local_dir(resolve_checkpoint(args.checkpoint)) as d:
        p = Predictor(d)
    if p.meta["model"]["name"] != "minilm":
        raise SeqlabError(f"only minilm checkpoints export to the Hugging Face format; this one is "
                          f"{p.meta['model']['name']!r} (its model.safetensors loads with seqlab.checkpoint.load_model)")
    from seqlab.models.bert import export_pretrained

    out = export_pretrained(p.model, p.tokenizer, Path(args.out), p.labels)
    _log(f"wrote {out}: AutoModelForSequenceClassification.from_pretrained({str(out)!r}) loads it")
    return {"path": str(out)}


DEMO_EXAMPLES = [
    "I have disputed this account on my credit report three times and the bureau keeps reporting it as late.",
    "A collector keeps calling me at work about a debt I do not owe and threatened to sue me.",
    "My mortgage servicer lost my payment and now says my loan is in default and charged fees.",
]


def cmd_demo(cfg: dict, args) -> dict:
    """The main job: data -> Ray Train -> Ray Tune + Optuna -> test figures -> Ray Serve -> HTTP."""
    t0 = time.perf_counter()
    # Run names carry a hash of the settings, so changed settings start new runs and the same
    # settings resume (or reuse) the finished ones.
    settings = {s: dataclasses.asdict(cfg[s]) for s in ("data", "model", "train", "search")}
    tag = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
    cfg["train"] = dataclasses.replace(cfg["train"], name=f"{cfg['train'].name}-{tag}")
    cfg["search"] = dataclasses.replace(cfg["search"], search_name=f"{cfg['search'].search_name}-{tag}")
    _log("1/5 data")
    cmd_data(cfg, args)
    _log(f"2/5 train ({cfg['train'].num_workers} workers, {cfg['train'].epochs} epochs)")
    trained = cmd_train(cfg, args)
    _log(f"3/5 search ({cfg['search'].num_samples} trials, Optuna TPE + ASHA)")
    tuned = cmd_tune(cfg, args)
    from seqlab import registry

    card = registry.promote(str(tuned["out_dir"]), "demo-cfpb-lstm", args.registry or registry.default_root())
    _log(f"4/5 promote the best trial as {card['name']}:{card['version']} and serve it")
    url = start_serve([f"{card['name']}:{card['version']}"], args)
    _log(f"5/5 POST {url}/v1/classify")
    status, answer = _http_json("POST", f"{url}/v1/classify", {"texts": DEMO_EXAMPLES})
    if status != 200:
        raise SeqlabError(f"the served model answered HTTP {status}: {answer}")
    for text, pred in zip(DEMO_EXAMPLES, answer["predictions"]):
        top = max(pred["probabilities"].values())
        print(f"  {pred['label']!r} (p={top:.2f})  <- {text[:70]}...", flush=True)
    bad_status, bad = _http_json("POST", f"{url}/v1/classify", {"texts": []})
    _log(f"a bad request gets HTTP {bad_status}: {bad.get('error')}")
    _log(f"done in {time.perf_counter() - t0:.0f}s: train run test macro-F1 {trained['test']['macro_f1']:.4f}; "
         f"tuned test macro-F1 {tuned['test']['macro_f1']:.4f}; results in {cfg['search'].results_dir}/")
    if not args.keep_serving:
        from ray import serve

        serve.shutdown()
    return {"answer": answer, "bad_status": bad_status, "tuned": tuned, "trained": trained}


# Smaller settings so `seqlab demo` finishes in about 10 minutes on 2 CPU cores; --full lifts them.
DEMO_DEFAULTS = {"data": {"max_len": 256},
                 "train": {"epochs": 4, "name": "demo-cfpb-lstm"},
                 "search": {"num_samples": 4, "hidden_max": 128, "search_name": "demo-cfpb-lstm-search",
                            "results_dir": "results/demo"}}
FULL_DEFAULTS = {"train": {"epochs": 8, "name": "cfpb-lstm"},
                 "search": {"num_samples": 16, "hidden_max": 512, "search_name": "cfpb-lstm-search"}}


def _serve_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("serve")
    g.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    g.add_argument("--port", type=int, default=8000, help="HTTP port (default: 8000)")
    g.add_argument("--registry", help="model registry folder or s3:// URI (default: $SEQLAB_REGISTRY, else "
                                      "~/.seqlab/registry)")
    g.add_argument("--max-texts", type=int, default=64, help="most texts per request (default: 64)")
    g.add_argument("--max-chars", type=int, default=20000, help="most characters per text (default: 20000)")
    g.add_argument("--max-body-bytes", type=int, default=1 << 20, help="largest request body (default: 1 MiB)")
    g.add_argument("--max-batch-size", type=int, default=32, help="dynamic batch size per model (default: 32)")
    g.add_argument("--batch-wait-timeout-s", type=float, default=0.01,
                   help="longest wait for a batch to fill (default: 0.01)")
    g.add_argument("--replicas", type=int, default=1, help="replicas per model without autoscaling (default: 1)")
    g.add_argument("--min-replicas", type=int, help="autoscaling: fewest replicas per model (default: 1)")
    g.add_argument("--max-replicas", type=int, help="autoscaling: most replicas per model (turns autoscaling on)")
    g.add_argument("--target-ongoing-requests", type=float,
                   help="autoscaling: requests per replica to aim for (default: 16)")
    g.add_argument("--gpus-per-replica", type=float,
                   help="GPUs per model replica (default: 1 when the cluster has GPUs, else 0; 0.5 shares one)")
    g.add_argument("--cpus-per-replica", type=float,
                   help="CPUs each model replica reserves (default: 1, or an equal share when that would not fit)")
    g.add_argument("--api-keys-file", help="require an X-API-Key header on /v1/*: one accepted key per line "
                                           "(also $SEQLAB_API_KEYS, comma-separated); off when neither is set")
    g.add_argument("--no-access-log", dest="access_log", action="store_false", default=None,
                   help="no log line per request from the gateway and model replicas (errors are still "
                        "logged)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seqlab", description=__doc__.split("\n")[0], epilog=EPILOG)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("data", help="fetch, verify and split a dataset; write its card", epilog=EPILOG)
    add_arguments(p, ["data"])
    p.add_argument("--molecules", action="store_true",
                   help="a user file of SMILES (a 'smiles' column or a .smi file); invalid ones are counted and skipped")
    p.set_defaults(fn=cmd_data, sections=["data"])

    p = sub.add_parser("train", help="train with Ray Train (data-parallel); resumes a run of the same name",
                       epilog=EPILOG)
    add_arguments(p, ["data", "model", "train"])
    p.set_defaults(fn=cmd_train, sections=["data", "model", "train"])

    p = sub.add_parser("tune", help="search LSTM width and dropout with Ray Tune + Optuna + ASHA", epilog=EPILOG)
    add_arguments(p, ["data", "model", "train", "search"])
    p.set_defaults(fn=cmd_tune, sections=["data", "model", "train", "search"])

    p = sub.add_parser("serve", help="serve registry models (or one checkpoint) over HTTP with Ray Serve")
    p.add_argument("--models", help="registry models to serve, name[:version] comma-separated")
    p.add_argument("--checkpoint", help="or one checkpoint folder/URI, a best.json, or a folder with one")
    p.add_argument("--no-block", action="store_true", help="return once the app is up (for scripts)")
    _serve_args(p)
    p.set_defaults(fn=cmd_serve, sections=[])

    p = sub.add_parser("registry", help="promote, list and show named model versions; write a Serve config")
    reg = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    q = reg.add_parser("promote", help="copy a search's best trial (or a checkpoint) in as the next version")
    q.add_argument("source", help="a search's results folder or best.json, or a checkpoint folder (local or s3://)")
    q.add_argument("--name", required=True, help="model name: lower-case letters, digits, - and _")
    q.add_argument("--metric", help="trial metric to pick by (default: the one the search optimised)")
    q.add_argument("--mode", choices=["max", "min"], help="default: min for losses, else max")
    q.add_argument("--serve", action="store_true", help="then serve it (the serve options below apply)")
    q.add_argument("--no-block", action="store_true", help="with --serve: return once the app is up")
    _serve_args(q)
    q = reg.add_parser("list", help="every model with its newest version")
    q.add_argument("--registry", help="registry folder or s3:// URI (default: $SEQLAB_REGISTRY or ~/.seqlab/registry)")
    q = reg.add_parser("show", help="a version's card: metrics, data, commit, checksums")
    q.add_argument("ref", help="name (the newest version) or name:version")
    q.add_argument("--registry", help="registry folder or s3:// URI (default: $SEQLAB_REGISTRY or ~/.seqlab/registry)")
    q = reg.add_parser("serve-config", help="write a Serve config file (serve run / serve deploy) for models")
    q.add_argument("--models", required=True, help="name[:version] comma-separated")
    q.add_argument("-o", "--out", help="file to write (default: print it)")
    _serve_args(q)
    p.set_defaults(fn=cmd_registry, sections=[])

    p = sub.add_parser("predict", help="classify texts with a checkpoint, locally, without Ray")
    p.add_argument("--checkpoint", required=True, help="checkpoint folder/URI, a best.json, or a folder with one")
    p.add_argument("texts", nargs="*", help="texts to classify")
    p.add_argument("--file", help="a file of texts, one per line")
    p.set_defaults(fn=cmd_predict, sections=[])

    p = sub.add_parser("generate", help="generate text with a char-lstm checkpoint, locally, without Ray")
    p.add_argument("--checkpoint", required=True, help="checkpoint folder/URI, a best.json, or a folder with one")
    p.add_argument("--category", help="category to imitate (required by a conditional model)")
    p.add_argument("--prompt", default="", help="text to continue (default: none)")
    p.add_argument("--length", type=int, default=300, help="most characters to generate (default: 300)")
    p.add_argument("--temperature", type=float, default=0.5, help="sampling temperature (default: 0.5)")
    p.add_argument("--n", type=int, default=1, help="texts to generate (default: 1)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.set_defaults(fn=cmd_generate, sections=[])

    p = sub.add_parser("sample", help="sample molecules from a SMILES generator checkpoint, locally, without Ray")
    p.add_argument("--checkpoint", required=True, help="checkpoint folder/URI, a best.json, or a folder with one")
    p.add_argument("--n", type=int, default=10, help="molecules to sample (default: 10)")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default: 1.0)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--grid", help="also draw the valid ones into this PNG file")
    p.set_defaults(fn=cmd_sample, sections=[])

    p = sub.add_parser("export", help="write a minilm checkpoint as a Hugging Face folder (save_pretrained)")
    p.add_argument("--checkpoint", required=True, help="checkpoint folder/URI, a best.json, or a folder with one")
    p.add_argument("--out", required=True, help="folder to write (config.json, model.safetensors, tokenizer)")
    p.set_defaults(fn=cmd_export, sections=[])

    p = sub.add_parser("models", help="list the models of the registry with their task and options")
    p.set_defaults(fn=cmd_models, sections=[])

    p = sub.add_parser("demo", help="the whole path on a local Ray: data, train, search, serve, one HTTP request",
                       epilog=EPILOG)
    p.add_argument("--full", action="store_true",
                   help="full-size run: all data, 8 epochs, 16 trials over widths 32-512 (hours on 2 CPU cores)")
    p.add_argument("--keep-serving", action="store_true", help="leave the HTTP app running at the end")
    add_arguments(p, ["data", "model", "train", "search"])
    _serve_args(p)
    p.set_defaults(fn=cmd_demo, sections=["data", "model", "train", "search"])
    return parser


def parse(argv: list[str]) -> tuple[argparse.Namespace, dict]:
    args = build_parser().parse_args(argv)
    args.argv = ["seqlab", *argv]
    if args.command == "demo":
        # demo presets apply wherever no flag was given
        for section, values in (FULL_DEFAULTS if args.full else DEMO_DEFAULTS).items():
            for k, v in values.items():
                if not hasattr(args, f"{section}.{k}"):
                    setattr(args, f"{section}.{k}", v)
    return args, from_arguments(args, args.sections)


def run(argv: list[str]) -> dict:
    """Run one subcommand and return what it produced (for tests and scripts)."""
    args, cfg = parse(argv)
    return args.fn(cfg, args)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    try:
        run(argv)
    except SeqlabError as exc:
        print(f"seqlab: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
