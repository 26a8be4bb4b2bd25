"""The Serve application: one gateway in front of any number of models, each its own deployment.

    seqlab serve --models cfpb,drugs:2          # from the model registry (seqlab registry promote ...)
    seqlab serve --checkpoint ~/.seqlab/results/cfpb-lstm  # a checkpoint, best.json or search folder
    serve run serve.yaml                        # the config `seqlab registry serve-config` writes

Each model is a deployment of its own (``model-<name>``) rather than one multiplexed deployment:
the models differ in task, size and traffic, so each gets its own replicas, autoscaling, batch size
and GPU share, a batch only ever holds one model's requests, and no request waits for another
model to be swapped into memory.
"""

from __future__ import annotations

import dataclasses

from ray import serve

from seqlab import registry
from seqlab.errors import SeqlabError
from seqlab.serve.gateway import Gateway
from seqlab.serve.guard import DIGEST, load_api_keys
from seqlab.serve.options import (
    ServeOptions,
    autoscaling,
    cpus_per_replica,
    deployment_name,
    gpus_per_replica,
    max_ongoing,
)
from seqlab.serve.server import ModelServer


def model_deployment(key: str, source: dict, opts: ServeOptions, *, gpus: float, cpus: float):
    """One model's deployment, named ``model-<key>`` so a Serve config can tune it by name."""
    options = {"name": deployment_name(key), "max_ongoing_requests": max_ongoing(opts.max_batch_size),
               "ray_actor_options": {"num_cpus": cpus, "num_gpus": gpus},
               "logging_config": {"enable_access_log": opts.access_log}}
    scaling = autoscaling(opts)
    if scaling:
        options["autoscaling_config"] = scaling
    else:
        options["num_replicas"] = opts.replicas
    return ModelServer.options(**options).bind(source, key, max_texts=opts.max_texts, max_chars=opts.max_chars,
                                               max_batch_size=opts.max_batch_size,
                                               batch_wait_timeout_s=opts.batch_wait_timeout_s)


def options_of(args: dict) -> ServeOptions:
    """:class:`ServeOptions` from a Serve config's ``args`` (``num_replicas`` is ``replicas``; ``auto``
    or absent keeps a default)."""
    known = {f.name for f in dataclasses.fields(ServeOptions)}
    renamed = {"num_replicas": "replicas"}
    values = {renamed.get(k, k): v for k, v in args.items()}
    return ServeOptions(**{k: v for k, v in values.items() if k in known and v not in (None, "auto")})


def build_app(args: dict) -> serve.Application:
    """Application builder for ``serve run`` and Serve config files.

    ``models``: registry references (``name`` or ``name:version``, a list or comma-separated) with
    ``registry`` (default ``$SEQLAB_REGISTRY``); or ``checkpoint``: one checkpoint folder, best.json
    or search folder. The other arguments are the fields of :class:`ServeOptions` (``num_replicas``
    for ``replicas``), ``api_key_digests`` (sha256 hex digests of accepted keys) and ``versions``
    (``{reference: version}``), as ``seqlab registry serve-config`` writes them.

    Each registry reference is pinned to one version: the one ``versions`` names, else the newest at
    this moment. Every replica of the model, also one added later by autoscaling or replacing a
    crashed one, serves that version, and every response names it (``name:version``). Promoting a
    new version takes a new config and a redeploy; the deployment keeps its name, so Serve replaces
    its replicas in place.
    """
    args = dict(args)
    if not args.get("models") and not args.get("checkpoint"):
        raise SeqlabError("build_app needs models=<name[:version],...> (from the registry) or checkpoint=<folder "
                          "or best.json>")
    opts = options_of(args)
    if args.get("models"):
        refs = args["models"].split(",") if isinstance(args["models"], str) else list(args["models"])
        root = opts.registry or registry.default_root()
        sources = {}
        pinned = args.get("versions") or {}
        for text in refs:
            ref = registry.Ref.parse(text)
            if str(ref) in pinned:
                ref_to_load = registry.Ref(ref.name, int(pinned[str(ref)]))
            else:
                ref_to_load = ref
            card = registry.card(root, ref_to_load)  # fails here, naming the registry's models, not in a replica
            sources[str(ref)] = {"registry": root, "ref": f"{card['name']}:{card['version']}"}
    else:
        sources = {"default": {"checkpoint": args["checkpoint"]}}
    most = opts.max_replicas or opts.replicas
    gpus, cpus = gpus_per_replica(opts.gpus_per_replica), cpus_per_replica(opts.cpus_per_replica, len(sources) * most)
    handles = {key: model_deployment(key, src, opts, gpus=gpus, cpus=cpus) for key, src in sources.items()}
    gateway = Gateway.options(logging_config={"enable_access_log": opts.access_log})
    return gateway.bind(handles, api_key_digests=sorted(key_digests(args, opts)), max_body_bytes=opts.max_body_bytes,
                        max_chars=opts.max_chars)


def key_digests(args: dict, opts: ServeOptions) -> frozenset:
    """The accepted keys' sha256 digests: given ones (``api_key_digests``), and those of
    ``api_keys_file`` and ``$SEQLAB_API_KEYS`` read here, where the application is built."""
    given = args.get("api_key_digests") or []
    bad = [d for d in given if not DIGEST.match(str(d))]
    if bad:
        raise SeqlabError(f"api_key_digests: {str(bad[0])[:16]!r}... is not a sha256 hex digest (64 of 0-9a-f); "
                          f"seqlab registry serve-config --api-keys-file FILE writes them")
    return frozenset(given) | load_api_keys(opts.api_keys_file)


def start(source: str | list[str], opts: ServeOptions) -> str:
    """Serve a checkpoint (a path or URI) or registry models (a list of ``name[:version]``) on a local
    Ray (or ``RAY_ADDRESS``); returns the base URL once every model answers."""
    from seqlab.train.driver import init_ray

    if isinstance(source, list):
        chosen = {"models": source}
        root = opts.registry or registry.default_root()
        for ref in source:
            registry.card(root, ref)  # a bad reference fails here, before Ray starts
    else:
        chosen = {"checkpoint": source}
    init_ray()
    app = build_app({**chosen, **dataclasses.asdict(opts)})  # after Ray: replicas get a CPU share that fits
    serve.start(http_options={"host": opts.host, "port": opts.port})
    serve.run(app, name="seqlab", route_prefix="/")
    return f"http://{'127.0.0.1' if opts.host in ('0.0.0.0', '::') else opts.host}:{opts.port}"


def code_package(root: str) -> str | None:
    """The seqlab package this process runs, zipped and uploaded once next to an ``s3://`` registry
    (``<registry>/_code/seqlab-<sha>.zip``, named by its content); its URI, for a Serve config's
    ``runtime_env.py_modules``. None for a local registry: a config for one machine runs the
    installed code. A Serve config takes remote URIs only, so this is how the checkout reaches the
    nodes of a cluster (``ray job submit`` uploads it itself)."""
    if not root.startswith("s3://"):
        return None
    import hashlib
    import io
    import zipfile
    from pathlib import Path

    import seqlab
    from seqlab import storage

    package = Path(seqlab.__file__).resolve().parent
    files = sorted(p for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    digest = hashlib.sha256()
    for p in files:
        digest.update(str(p.relative_to(package)).encode() + b"\0" + p.read_bytes() + b"\0")
    top = f"seqlab-{digest.hexdigest()[:12]}"
    uri = storage.join(root, "_code", f"{top}.zip")
    if not storage.exists(uri):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for p in files:  # one top-level folder, which Ray strips: seqlab/ lands on the PYTHONPATH
                zf.write(p, f"{top}/seqlab/{p.relative_to(package)}")
        storage.write_bytes(uri, buf.getvalue())
    return uri


def serve_config(models: str, opts: ServeOptions, *, proxy_location: str = "EveryNode") -> str:
    """A Serve config file (``serve run``/``serve deploy``) for registry models, with every model's
    deployment listed so its replicas, autoscaling and resources can be tuned by name.

    Resources are left to the application unless given (``--gpus-per-replica``,
    ``--cpus-per-replica``): it then places replicas as ``seqlab serve`` does, a GPU per replica
    where the cluster has GPUs. API keys go in as their sha256 digests, so no key file has to exist
    on the cluster; the code goes in as a ``runtime_env`` (:func:`code_package`)."""
    import yaml

    from seqlab.provenance import git_commit

    root = opts.registry or registry.default_root()
    refs = [registry.Ref.parse(m) for m in models.split(",") if m.strip()]
    # every model exists, else a clear error now; each is pinned to its version of this moment, so a
    # config made after promoting a new version differs, and `serve deploy` rolls the replicas over
    versions = {str(ref): registry.card(root, ref)["version"] for ref in refs}
    scaling = {"min_replicas": opts.min_replicas or 1, "max_replicas": opts.max_replicas or 1,
               "target_ongoing_requests": opts.target_ongoing_requests or 16}
    deployments = [{"name": "Gateway", "num_replicas": 1, "max_ongoing_requests": 512}]
    for ref in refs:
        deployment = {"name": deployment_name(str(ref)), "max_ongoing_requests": max_ongoing(opts.max_batch_size),
                      "autoscaling_config": scaling}
        if opts.gpus_per_replica is not None or opts.cpus_per_replica is not None:
            # a config's ray_actor_options replace the application's whole, so both are written
            deployment["ray_actor_options"] = {"num_cpus": opts.cpus_per_replica or 1.0,
                                               "num_gpus": float(opts.gpus_per_replica or 0)}
        deployments.append(deployment)
    args = {k: v for k, v in dataclasses.asdict(opts).items()
            if v is not None and k not in ("host", "port", "registry", "replicas", "api_keys_file")}
    digests = sorted(load_api_keys(opts.api_keys_file))
    app = {"name": "seqlab", "route_prefix": "/", "import_path": "seqlab.serve.app:build_app",
           "args": {"models": [str(r) for r in refs], "versions": versions, "registry": root, **args, **scaling,
                    **({"api_key_digests": digests} if digests else {})},
           "deployments": deployments}
    code = code_package(root)
    if code:
        app["runtime_env"] = {"py_modules": [code]}
    config = {"proxy_location": proxy_location, "http_options": {"host": opts.host, "port": opts.port},
              "applications": [app]}
    from ray.serve.schema import ServeDeploySchema

    ServeDeploySchema.model_validate(config)  # what serve run/deploy will check
    header = (f"# Serve config for seqlab registry models; made by: seqlab registry serve-config --models "
              f"{models} (commit {git_commit()}).\n# Run with `serve run FILE` or `serve deploy FILE`.\n")
    return header + yaml.safe_dump(config, sort_keys=False)
