"""The Serve application: one gateway in front of any number of models, each its own deployment.

    seqlab serve --models cfpb,drugs:2          # from the model registry (seqlab registry promote ...)
    seqlab serve --checkpoint results/cfpb-lstm # one checkpoint, a best.json or a search folder
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
    for ``replicas``).
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
        for text in refs:
            ref = registry.Ref.parse(text)
            registry.card(root, ref)  # fails here, naming the registry's models, rather than in a replica
            sources[str(ref)] = {"registry": root, "ref": str(ref)}
    else:
        sources = {"default": {"checkpoint": args["checkpoint"]}}
    most = opts.max_replicas or opts.replicas
    gpus, cpus = gpus_per_replica(opts.gpus_per_replica), cpus_per_replica(opts.cpus_per_replica, len(sources) * most)
    handles = {key: model_deployment(key, src, opts, gpus=gpus, cpus=cpus) for key, src in sources.items()}
    gateway = Gateway.options(logging_config={"enable_access_log": opts.access_log})
    return gateway.bind(handles, api_keys_file=opts.api_keys_file, max_body_bytes=opts.max_body_bytes,
                        max_chars=opts.max_chars)


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


def serve_config(models: str, opts: ServeOptions) -> str:
    """A Serve config file (``serve run``/``serve deploy``) for registry models, with every model's
    deployment listed so its replicas, autoscaling and GPUs can be tuned by name."""
    import yaml

    from seqlab.provenance import git_commit

    root = opts.registry or registry.default_root()
    refs = [registry.Ref.parse(m) for m in models.split(",") if m.strip()]
    for ref in refs:
        registry.card(root, ref)  # every model exists, else a clear error now
    scaling = {"min_replicas": opts.min_replicas or 1, "max_replicas": opts.max_replicas or 1,
               "target_ongoing_requests": opts.target_ongoing_requests or 16}
    deployments = [{"name": "Gateway", "num_replicas": 1, "max_ongoing_requests": 512}]
    for ref in refs:
        deployments.append({"name": deployment_name(str(ref)), "max_ongoing_requests": max_ongoing(opts.max_batch_size),
                            "autoscaling_config": scaling,
                            "ray_actor_options": {"num_cpus": opts.cpus_per_replica or 1.0,
                                                  "num_gpus": float(opts.gpus_per_replica or 0)}})
    args = {k: v for k, v in dataclasses.asdict(opts).items()
            if v is not None and k not in ("host", "port", "registry", "replicas")}
    app_args = {"models": [str(r) for r in refs], "registry": root, **args, **scaling}
    config = {"proxy_location": "EveryNode", "http_options": {"host": opts.host, "port": opts.port},
              "applications": [{"name": "seqlab", "route_prefix": "/", "import_path": "seqlab.serve.app:build_app",
                                "args": app_args, "deployments": deployments}]}
    from ray.serve.schema import ServeDeploySchema

    ServeDeploySchema.model_validate(config)  # what serve run/deploy will check
    header = (f"# Serve config for seqlab registry models; made by: seqlab registry serve-config --models "
              f"{models} (commit {git_commit()}).\n# Run with `serve run FILE` or `serve deploy FILE`.\n")
    return header + yaml.safe_dump(config, sort_keys=False)
