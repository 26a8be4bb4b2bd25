"""``seqlab data|models|train|runs|tune|registry|serve|predict|generate|sample|encode|neighbours|optimize|export``:
parse the command line, then hand over to the library; every command has ``--help``.

Every subcommand prints ``seqlab: error: ...`` (one line, exit 2) for bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from seqlab import __version__
from seqlab.config import add_arguments, chosen_model, from_arguments
from seqlab.errors import BadInput, SeqlabError
from seqlab.serve.options import add_serve_arguments, serve_options

EPILOG = "Options may also come from --config FILE.yaml (sections data, model, train, search); flags win."


def log(msg: str) -> None:
    print(f"[seqlab] {msg}", flush=True)


def cmd_data(cfg: dict, args) -> dict:
    from seqlab.data.select import prepare_data

    prepared = prepare_data(cfg["data"], molecules=getattr(args, "molecules", False))
    log(f"{prepared.name}: {prepared.card['counts']} -> {prepared.root}")
    log(f"dataset card: {prepared.root / 'README.md'}")
    return {"root": str(prepared.root), "card": prepared.card}


def cmd_models(cfg: dict, args) -> dict:
    from seqlab.models import MODELS

    for name, e in MODELS.items():
        options = ", ".join(f"{n}={p.default}" for n, p in e.parameters().items())
        print(f"{name:15} {e.task:9} {e.summary}\n{'':15} options: {options}", flush=True)
    return {"models": sorted(MODELS)}


def headline(metrics: dict) -> str:
    keys = [k for k in ("accuracy", "macro_f1", "nats_per_char", "bits_per_char", "char_accuracy", "recon", "kl",
                        "reconstruction", "valid", "unique") if k in metrics]
    return ", ".join(f"{k.replace('_', ' ')} {metrics[k]:.4f}" for k in keys)


def cmd_train(cfg: dict, args) -> dict:
    from seqlab.console import story
    from seqlab.storage import join
    from seqlab.train.driver import best_checkpoint_path, evaluate_test, fit, init_ray, prepare
    from seqlab.train.tracking import for_runs
    from seqlab.tune.study import redact

    train = cfg["train"]
    storage = train.resolved_storage()
    prepared = prepare(cfg["data"], cfg["model"])  # bad data is one line here, before a log is made
    tracking = for_runs(train.tracking_uri, train.experiment, storage)
    with story(join(storage, train.name), "train", verbose=args.verbose):
        init_ray()
        t0 = time.perf_counter()
        result = fit(prepared, cfg["model"], train, tracking=tracking)
        best = best_checkpoint_path(result, prepared.task)
        test = evaluate_test(best, cfg["data"])
        restarts = int(result.metrics.get("restarts", 0))
        log(f"run {cfg['train'].name}: {result.metrics.get('epoch')} epochs in {time.perf_counter() - t0:.0f}s"
            f"{f' ({restarts} restarts from a checkpoint)' if restarts else ''}; best checkpoint {best}")
        log(f"test {headline(test)} (n={test['n']})")
        if tracking is not None:
            log(f"MLflow: run {train.name} in experiment {train.experiment!r} of {redact(tracking.uri)}"
                + (f" (mlflow ui --backend-store-uri {tracking.uri})" if tracking.uri.startswith("sqlite:") else ""))
    return {"checkpoint": best, "metrics": result.metrics, "test": test, "path": result.path, "task": prepared.task}


def cmd_runs(cfg: dict, args) -> dict:
    from seqlab import runs
    from seqlab.config import TrainConfig
    from seqlab.storage import read_bytes

    root = TrainConfig(storage_path=args.storage_path).resolved_storage()  # where `seqlab train` puts them
    if args.action == "curves":
        out = Path(args.out or f"{args.name}-tensorboard").expanduser()
        files = runs.download_curves(root, args.name, out)
        log(f"copied {len(files)} event file{'s' * (len(files) > 1)} of run {args.name} to {out}: "
            f"tensorboard --logdir {out}")
        drawn = []
        if args.plot:
            drawn = runs.plot_curves(out, Path(args.plot), f"{args.name} ({root})")
            log(f"drew {', '.join(drawn)} by epoch into {args.plot}")
        return {"run": args.name, "out": str(out), "files": [str(f) for f in files], "plotted": drawn}
    if args.action == "log":
        uri = runs.newest_log(root, args.name)
        sys.stdout.write(read_bytes(uri).decode(errors="replace"))
        log(f"that was {uri}")
        return {"log": uri}
    rows = runs.listing(root)
    if not rows:
        log(f"no runs in {root} (seqlab train --storage-path chooses where runs go)")
        return {"storage": root, "runs": rows}
    log(f"{len(rows)} run{'s' * (len(rows) > 1)} in {root}")
    print(runs.table(rows), flush=True)
    return {"storage": root, "runs": rows}


def cmd_tune(cfg: dict, args) -> dict:
    from seqlab.console import story
    from seqlab.models import entry
    from seqlab.storage import join
    from seqlab.train.driver import one_pass, prepare
    from seqlab.tune.search import check_searchable, check_unchanged, objective, search_settings
    from seqlab.tune.study import open_study_storage

    cfg = {**cfg, "train": one_pass(cfg["model"], cfg["train"])}
    train, search = cfg["train"], cfg["search"]
    storage = train.resolved_storage()
    dims = check_searchable(search, cfg["model"].model)
    metric, mode = objective(entry(cfg["model"].model).task, search, train)
    if search.study_storage and not search.grid:
        open_study_storage(search.study_storage)  # unreachable: one line now, before Ray starts
    # a search name reused with other settings: one line now, before Ray starts
    check_unchanged(join(storage, search.search_name), search_settings(cfg["data"], cfg["model"], train, search))
    prepared = prepare(cfg["data"], cfg["model"])  # bad data is one line here, before a log is made
    with story(join(storage, search.search_name), "tune", verbose=args.verbose, search=True):
        return _tune(cfg, args, prepared, dims, metric, mode, storage)


def _tune(cfg: dict, args, prepared, dims: dict, metric: str, mode: str, storage: str) -> dict:
    from seqlab import provenance
    from seqlab.storage import is_remote, join, staged_dir
    from seqlab.tasks.predictor import model_label
    from seqlab.train.driver import evaluate_test, init_ray
    from seqlab.train.tracking import end_search, for_runs, start_search
    from seqlab.tune.results import summarise, write_results, write_test_report
    from seqlab.tune.search import run_search
    from seqlab.tune.study import redact

    train, search = cfg["train"], cfg["search"]
    tracking = for_runs(train.tracking_uri, train.experiment, storage)
    if tracking is not None:  # the parent run, made here so that the trials' runs can name it
        tracking = start_search(tracking, join(storage, search.search_name), search.search_name,
                                {"model": cfg["model"].model, "data.name": prepared.card.get("name"),
                                 "epochs": train.epochs, "num_samples": search.num_samples,
                                 **{f"space.{k}": str(d) for k, d in dims.items()}})
    init_ray()
    t0 = time.perf_counter()
    grid = run_search(prepared, cfg["model"], train, search, tracking=tracking)
    wall = time.perf_counter() - t0
    summary = summarise(grid, cfg["train"].epochs, metric, mode, dims)
    results = join(cfg["search"].resolved_results(), model_label(prepared.card, cfg["model"].model))
    prov = provenance.record(getattr(args, "argv", None))
    with staged_dir(results) as out_dir:  # an s3:// results_dir gets the files when the block ends
        best = write_results(summary, out_dir, metric, {"search": cfg["search"].search_name, "data": prepared.card,
                                                        "search_wall_time_s": round(wall, 1), **prov}, dims)
        log(f"search {cfg['search'].search_name}: {len(summary)} trials in {wall:.0f}s -> {results}/search.csv")
        for line in summary.drop(columns=["checkpoint"]).to_string(index=False).splitlines():
            log(f"  {line}")
        test = evaluate_test(best["checkpoint"], cfg["data"])
        write_test_report(out_dir, best, test, cfg, prov)
        card = Path(prepared.card["root"]) / "README.md"
        (out_dir / "dataset_card.md").write_text(card.read_text())
    if tracking is not None:
        end_search(tracking, {"trial": best["trial"], "checkpoint": best["checkpoint"], metric: best[metric]})
        log(f"MLflow: search {search.search_name} and its trials in experiment {train.experiment!r} of "
            f"{redact(tracking.uri)}")
    log(f"best trial {best['trial']}: {metric} {best[metric]:.4f}; test {headline(test)}")
    return {"best": best, "test": test, "summary": summary, "out_dir": results if is_remote(results) else out_dir}


def block(url: str, args) -> None:
    log(f"serving at {url}: try the models at {url}/ (API schema: {url}/docs); Ctrl-C stops")
    if args.no_block:
        return
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        from ray import serve

        serve.shutdown()


def cmd_serve(cfg: dict, args) -> dict:
    from seqlab.serve.app import start
    from seqlab.serve.sources import resolve_checkpoint

    if bool(args.checkpoint) == bool(args.models):
        raise SeqlabError("give either --models name[:version],... (from the registry) or --checkpoint PATH")
    source = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else resolve_checkpoint(
        args.checkpoint)
    url = start(source, serve_options(args))
    block(url, args)
    return {"url": url}


def cmd_registry(cfg: dict, args) -> dict:
    from seqlab import registry

    root = args.registry or registry.default_root()
    if args.action == "promote":
        card = registry.promote(args.source, args.name, root, metric=args.metric, mode=args.mode)
        how = card["promotion"]
        picked = (f"trial {how['trial']} ({how['metric']} {how['value']:.4f}, best of {how['trials_compared']})"
                  if "trial" in how else f"checkpoint {card['checkpoint']}")
        log(f"promoted {picked} as {card['name']}:{card['version']} in {root}")
        if args.serve:
            from seqlab.serve.app import start

            url = start([f"{card['name']}:{card['version']}"], serve_options(args))
            block(url, args)
            return {"card": card, "url": url}
        return {"card": card}
    if args.action == "list":
        rows = registry.listing(root)
        if not rows:
            log(f"registry {root} is empty; add a model with: seqlab registry promote <search folder> --name NAME")
        for r in rows:
            value = "" if r["value"] is None else f"{r['metric']} {r['value']:.4f}"
            print(f"{r['name']:24} v{r['version']:<4} ({r['versions']} version{'s' * (r['versions'] > 1)})  "
                  f"{r['task']:9} {r['model']:14} {value:24} {r['promoted_at']}", flush=True)
        return {"models": rows}
    if args.action == "show":
        card = registry.card(root, args.ref)
        print(json.dumps(card, indent=2), flush=True)
        return {"card": card}
    from seqlab.serve.app import serve_config  # serve-config

    text = serve_config(args.models, serve_options(args), proxy_location=args.proxy_location)
    if args.out:
        Path(args.out).write_text(text)
        log(f"wrote {args.out}: serve run {args.out} (this machine) or serve deploy {args.out} (a cluster)")
    else:
        print(text, end="", flush=True)
    return {"yaml": text}


def cmd_predict(cfg: dict, args) -> dict:
    from seqlab.checkpoint import local_dir
    from seqlab.serve.sources import resolve_checkpoint
    from seqlab.tasks.classify import TextClassifier

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
    from seqlab.serve.sources import resolve_checkpoint
    from seqlab.tasks.generate import TextGenerator

    if args.temperature <= 0 or args.length < 1 or args.n < 1:
        raise SeqlabError("--temperature must be > 0, --length and --n >= 1")
    if args.stream and args.n != 1:
        raise SeqlabError(f"--stream prints one text as it is sampled; got --n {args.n} (leave --n out, or drop --stream)")
    sampling = {"category": args.category, "prompt": args.prompt, "length": args.length,
                "temperature": args.temperature, "n": args.n, "seed": args.seed}
    with local_dir(resolve_checkpoint(args.checkpoint)) as d:
        model = TextGenerator(d)
        if args.stream:  # the text as it is sampled, plain: the same text as without --stream
            steps = model.stream(**sampling)  # a bad category fails here, before anything is printed
            text = args.prompt
            sys.stdout.write(text)
            for (char,) in steps:
                sys.stdout.write(char)
                sys.stdout.flush()
                text += char
            sys.stdout.write("\n")
            return {"texts": [text]}
        texts = model.generate(**sampling)
    for text in texts:
        print(json.dumps({"category": args.category, "text": text}), flush=True)
    return {"texts": texts}


def cmd_sample(cfg: dict, args) -> dict:
    from seqlab import chem
    from seqlab.checkpoint import local_dir
    from seqlab.serve.sources import resolve_checkpoint
    from seqlab.tasks.molecule import MoleculeGenerator

    if args.temperature <= 0 or not 1 <= args.n <= 100_000:
        raise SeqlabError("--temperature must be > 0 and --n within 1..100000")
    with local_dir(resolve_checkpoint(args.checkpoint)) as d:
        smiles = MoleculeGenerator(d).sample(args.n, temperature=args.temperature, seed=args.seed)
    valid = [chem.canonical(s) is not None for s in smiles]
    for s, ok in zip(smiles, valid):
        print(json.dumps({"smiles": s, "valid": ok}), flush=True)
    log(f"{sum(valid)} of {len(smiles)} valid ({chem.uniqueness(smiles, None):.3f} unique among the valid)")
    if args.grid and any(valid):
        chem.grid_png([s for s, ok in zip(smiles, valid) if ok][:48], Path(args.grid))
        log(f"drawn into {args.grid}")
    elif args.grid:
        log(f"no valid molecule to draw; {args.grid} not written")
    return {"smiles": smiles, "valid": valid}


def molecule_route(handler, request, checkpoint: str, items: int = 1) -> dict:
    """Answer a molecule route as Serve does, from a local checkpoint; a 4xx becomes a one-line error."""
    from seqlab.checkpoint import local_dir
    from seqlab.serve.sources import resolve_checkpoint
    from seqlab.tasks import Context
    from seqlab.tasks.molecule import MoleculeGenerator

    with local_dir(resolve_checkpoint(checkpoint)) as d:
        try:
            return handler(MoleculeGenerator(d), request, Context(key=checkpoint, max_items=items))
        except BadInput as exc:
            raise SeqlabError(exc.message) from None


def log_standardized(report: list[dict]) -> None:
    for item in report:
        if item["changes"]:
            log(f"standardised {item['input'][:80]!r} to {item['smiles']!r}: {'; '.join(item['changes'])}")


def cmd_encode(cfg: dict, args) -> dict:
    from seqlab.tasks.molecule import EncodeRequest, encode

    smiles = list(args.smiles)
    if args.file:
        smiles += [line.split()[0] for line in Path(args.file).read_text().splitlines() if line.strip()]
    if not smiles:
        raise SeqlabError("give one or more SMILES, as arguments or with --file (one per line)")
    out = molecule_route(encode, EncodeRequest(smiles=smiles, standardize=args.standardize), args.checkpoint,
                         items=len(smiles))
    log_standardized(out.get("standardized", []))
    for i, (s, z) in enumerate(zip(out["canonical"], out["latents"])):
        changes = {"changes": out["standardized"][i]["changes"]} if args.standardize else {}
        print(json.dumps({"input": smiles[i], "smiles": s, **changes, "latent": z}), flush=True)
    return out


def cmd_neighbours(cfg: dict, args) -> dict:
    from seqlab.tasks.molecule import NeighboursRequest, neighbours

    request = request_of(NeighboursRequest, smiles=args.smiles, n=args.n, radius=args.radius, seed=args.seed,
                         standardize=args.standardize)
    out = molecule_route(neighbours, request, args.checkpoint)
    log_standardized([out["standardized"]] if args.standardize else [])
    for m in out["neighbours"]:
        print(json.dumps(m), flush=True)
    log(f"{len(out['neighbours'])} distinct molecules around {out['query']!r}")
    return out


def request_of(cls, **values):
    """A route's request from command-line values; one out of its bounds is a one-line error naming the flag."""
    from pydantic import ValidationError

    try:
        return cls(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise SeqlabError(f"--{str(first['loc'][0]).replace('_', '-')}: {first['msg']}") from None


def cmd_optimize(cfg: dict, args) -> dict:
    from seqlab.tasks.molecule import OptimizeRequest, optimize

    request = request_of(OptimizeRequest, objective=args.objective, start=args.start,
                         min_similarity=args.min_similarity, budget=args.budget, n=args.n, seed=args.seed,
                         standardize=args.standardize)
    out = molecule_route(optimize, request, args.checkpoint)
    log_standardized([out["standardized"]] if out.get("standardized") else [])
    for m in out["molecules"]:
        print(json.dumps(m), flush=True)
    weights = " + ".join(f"{w:g}*{k}" for k, w in out["objective"].items())
    log(f"{len(out['molecules'])} best distinct molecules by {weights} from {out['decoded']} decoded points "
        f"({out['valid_fraction']:.0%} valid)" + (f", starting at {out['start']!r}" if out["start"] else ""))
    return out


def cmd_export(cfg: dict, args) -> dict:
    from seqlab.checkpoint import local_dir
    from seqlab.export import check_out, export
    from seqlab.serve.sources import resolve_checkpoint

    out = Path(args.out).expanduser()
    check_out(out)  # before a download
    with local_dir(resolve_checkpoint(args.checkpoint)) as d:
        info = export(d, out)
    log(f"wrote {out} ({info['format']}, {info['model']}): {info['load']}; export.json describes its inputs")
    return info


def add_verbose(p: argparse.ArgumentParser) -> None:
    p.add_argument("-v", "--verbose", action="store_true",
                   help="show Ray's own output and every worker's here too (default: seqlab's progress and "
                        "Ray's warnings that need you; all of it goes to logs/ in the run's folder either way)")


def build_parser(model: str | None = None) -> argparse.ArgumentParser:
    """The parser of every subcommand; ``model`` picks whose options ``--help`` lists (default lstm)."""
    parser = argparse.ArgumentParser(prog="seqlab", epilog=EPILOG, description="Train, search, register, serve and "
                                     "export sequence models (text and molecules) on Ray.")
    parser.add_argument("--version", action="version", version=f"seqlab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("data", help="fetch, verify and split a dataset; write its card", epilog=EPILOG)
    add_arguments(p, ["data"])
    p.add_argument("--molecules", action="store_true",
                   help="a user file of SMILES (a 'smiles' column or a .smi file); invalid ones are counted and skipped")
    p.set_defaults(fn=cmd_data, sections=["data"])

    p = sub.add_parser("train", help="train with Ray Train (data-parallel); resumes a run of the same name",
                       epilog=EPILOG)
    add_arguments(p, ["data", "model", "train"], model)
    add_verbose(p)
    p.set_defaults(fn=cmd_train, sections=["data", "model", "train"])

    p = sub.add_parser("runs", help="list the training runs under a storage path; copy (and plot) a run's "
                                    "TensorBoard curves; print a run's log",
                       description="List the runs under a storage path (a folder or s3:// URI): task, model, epochs "
                                   "done, the last epoch's validation metrics, whether it has TensorBoard curves. "
                                   "'runs curves NAME' copies a run's curves here; 'runs log NAME' prints the newest "
                                   "log of a run or search.")
    storage_help = "folder or s3:// URI the runs are in (default: where seqlab train puts them: $SEQLAB_STORAGE, " \
                   "else $SEQLAB_HOME/runs)"
    p.add_argument("--storage-path", help=storage_help)
    actions = p.add_subparsers(dest="action", metavar="[curves NAME | log NAME]", title="action (optional)")
    q = actions.add_parser("curves", help="copy a run's TensorBoard event files to a local folder; --plot draws them")
    q.add_argument("name", help="the run's name, as 'seqlab runs' lists it")
    q.add_argument("--storage-path", default=argparse.SUPPRESS, help=storage_help)
    q.add_argument("--out", help="local folder to copy them into (default: ./NAME-tensorboard); then "
                                 "tensorboard --logdir FOLDER")
    q.add_argument("--plot", metavar="PNG", help="also draw the train and validation curves, a panel per metric, "
                                                 "into this PNG file")
    q = actions.add_parser("log", help="print the newest log of a run or search: all its command printed, Ray's "
                                       "own output and the workers' included")
    q.add_argument("name", help="the run's or search's name")
    q.add_argument("--storage-path", default=argparse.SUPPRESS, help=storage_help)
    p.set_defaults(fn=cmd_runs, sections=[], action=None)

    p = sub.add_parser("tune", help="search LSTM width and dropout (or any --space) with Ray Tune + Optuna + ASHA",
                       epilog=EPILOG)
    add_arguments(p, ["data", "model", "train", "search"], model)
    add_verbose(p)
    p.set_defaults(fn=cmd_tune, sections=["data", "model", "train", "search"])

    p = sub.add_parser("serve", help="serve registry models (or one checkpoint) over HTTP with Ray Serve")
    p.add_argument("--models", help="registry models to serve, name[:version] comma-separated")
    p.add_argument("--checkpoint", help="or one checkpoint folder/URI, a best.json, or a folder with one")
    p.add_argument("--no-block", action="store_true", help="return once the app is up (for scripts)")
    add_serve_arguments(p)
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
    add_serve_arguments(q)
    registry_help = "registry folder or s3:// URI (default: $SEQLAB_REGISTRY or ~/.seqlab/registry)"
    q = reg.add_parser("list", help="every model with its newest version")
    q.add_argument("--registry", help=registry_help)
    q = reg.add_parser("show", help="a version's card: metrics, data, commit, checksums")
    q.add_argument("ref", help="name (the newest version) or name:version")
    q.add_argument("--registry", help=registry_help)
    q = reg.add_parser("serve-config", help="write a Serve config file (serve run / serve deploy) for models")
    q.add_argument("--models", required=True, help="name[:version] comma-separated")
    q.add_argument("-o", "--out", help="file to write (default: print it)")
    q.add_argument("--proxy-location", default="EveryNode", choices=["EveryNode", "HeadOnly"],
                   help="where Serve runs HTTP proxies (default: EveryNode; HeadOnly when the nodes share one "
                        "machine and so cannot each listen on the port)")
    add_serve_arguments(q)
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
    p.add_argument("--stream", action="store_true",
                   help="print the text character by character as it is sampled, as plain text (one text; the "
                        "default prints each finished text as a JSON line)")
    p.set_defaults(fn=cmd_generate, sections=[])

    p = sub.add_parser("sample", help="sample molecules from a SMILES generator checkpoint, locally, without Ray")
    p.add_argument("--checkpoint", required=True, help="checkpoint folder/URI, a best.json, or a folder with one")
    p.add_argument("--n", type=int, default=10, help="molecules to sample (default: 10)")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default: 1.0)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--grid", help="also draw the valid ones into this PNG file")
    p.set_defaults(fn=cmd_sample, sections=[])

    standardize_help = ("standardise each molecule first: keep the largest fragment, neutralise charges, drop stereo "
                        "and isotope labels the model has no tokens for; prints what changed")
    p = sub.add_parser("encode", help="encode molecules into a SMILES VAE's or autoencoder's latent space, locally, "
                                      "without Ray")
    p.add_argument("--checkpoint", required=True, help="checkpoint folder/URI, a best.json, or a folder with one")
    p.add_argument("smiles", nargs="*", help="SMILES to encode")
    p.add_argument("--file", help="a file of SMILES, one per line (a name after it allowed)")
    p.add_argument("--standardize", action="store_true", help=standardize_help)
    p.set_defaults(fn=cmd_encode, sections=[])

    p = sub.add_parser("neighbours", help="molecules decoded around a molecule's latent code, locally, without Ray")
    p.add_argument("--checkpoint", required=True, help="checkpoint folder/URI, a best.json, or a folder with one")
    p.add_argument("smiles", help="the molecule to start from")
    p.add_argument("--n", type=int, default=20, help="points drawn around its code (default: 20)")
    p.add_argument("--radius", type=float, default=0.5, help="standard deviation of the points (default: 0.5)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--standardize", action="store_true", help=standardize_help)
    p.set_defaults(fn=cmd_neighbours, sections=[])

    p = sub.add_parser("optimize", help="search a VAE's latent space for molecules with a high QED, logP or a "
                                        "weighted sum, locally, without Ray",
                       description="Move through a molecule VAE's latent space toward a property RDKit computes "
                                   "(the cross-entropy method, greedy decoding): the best distinct valid molecules "
                                   "found, one JSON line each, best first. The same search as POST "
                                   "/v1/molecules/optimize.")
    p.add_argument("--checkpoint", required=True, help="checkpoint folder/URI, a best.json, or a folder with one")
    p.add_argument("--objective", default="qed", help="qed, logp, or a weighted sum such as 'qed=1,logp=0.1' "
                                                      "(default: qed)")
    p.add_argument("--start", help="a molecule to start from (default: the prior)")
    p.add_argument("--min-similarity", type=float, default=0.0,
                   help="with --start: only molecules at least this Tanimoto-similar to it count (default: 0)")
    p.add_argument("--budget", type=int, default=512, help="latent points decoded in all, 16..4096 (default: 512)")
    p.add_argument("--n", type=int, default=10, help="best distinct molecules to print (default: 10)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--standardize", action="store_true", help=standardize_help)
    p.set_defaults(fn=cmd_optimize, sections=[])

    p = sub.add_parser("export", help="write any checkpoint in a form that loads without seqlab: TorchScript "
                                      "(minilm: a Hugging Face folder), checked against the model",
                       description="Write a checkpoint so that plain PyTorch (torch.jit.load) or, for minilm and "
                                   "sentence-minilm, transformers (from_pretrained) loads it; export.json lists each "
                                   "method's inputs and outputs, the labels and the tokenizer files.")
    p.add_argument("--checkpoint", required=True, help="checkpoint folder/URI, a best.json, or a folder with one")
    p.add_argument("--out", required=True, help="new or empty folder to write (model.pt or a save_pretrained folder, "
                                                "tokenizer files, export.json)")
    p.set_defaults(fn=cmd_export, sections=[])

    p = sub.add_parser("models", help="list the model architectures seqlab can train, with their task and options")
    p.set_defaults(fn=cmd_models, sections=[])
    return parser


def parse(argv: list[str]) -> tuple[argparse.Namespace, dict]:
    args = build_parser(chosen_model(argv)).parse_args(argv)
    args.argv = ["seqlab", *argv]
    return args, from_arguments(args, args.sections)


def run(argv: list[str]) -> dict:
    """Run one subcommand and return what it produced (for tests and scripts)."""
    args, cfg = parse(argv)
    return args.fn(cfg, args)


def main(argv: list[str] | None = None, run_fn=None) -> None:
    """Run a command line (``run_fn``, default :func:`run`); bad input ends in one line and exit code 2."""
    argv = sys.argv[1:] if argv is None else argv
    from seqlab import console

    console.enable()  # a command run from a shell or a Ray job: Ray's output to the run's log file
    try:
        (run_fn or run)(argv)
    except SeqlabError as exc:
        print(f"seqlab: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
