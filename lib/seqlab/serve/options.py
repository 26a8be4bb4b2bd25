"""The serving options, once: their defaults and help make the flags of ``seqlab serve``, ``seqlab
registry promote --serve`` and ``serve-config``, and the arguments of :func:`seqlab.serve.app.build_app`."""

from __future__ import annotations

import argparse
import dataclasses
import os
from dataclasses import dataclass, field

MAX_BATCH_SIZE = 32  # requests per dynamic batch of a classifier (its one default)


def _opt(default, help: str, flag: str | None = None):
    return field(default=default, metadata={"help": help, "flag": flag})


@dataclass
class ServeOptions:
    host: str = _opt("127.0.0.1", "address to listen on")
    port: int = _opt(8000, "HTTP port")
    registry: str | None = _opt(None, "model registry folder or s3:// URI (default: $SEQLAB_REGISTRY, else "
                                      "~/.seqlab/registry)")
    max_texts: int = _opt(64, "most texts (spans, molecules, latents) per request")
    max_chars: int = _opt(20_000, "most characters per text")
    max_body_bytes: int = _opt(1 << 20, "largest request body in bytes")
    max_batch_size: int = _opt(MAX_BATCH_SIZE, "dynamic batch size per model (classify requests)")
    batch_wait_timeout_s: float = _opt(0.01, "longest wait for a batch to fill, in seconds")
    replicas: int = _opt(1, "replicas per model without autoscaling")
    min_replicas: int | None = _opt(None, "autoscaling: fewest replicas per model (default: 1)")
    max_replicas: int | None = _opt(None, "autoscaling: most replicas per model (turns autoscaling on)")
    target_ongoing_requests: float | None = _opt(None, "autoscaling: requests per replica to aim for (default: 16)")
    gpus_per_replica: float | None = _opt(None, "GPUs per model replica (default: 1 when the cluster has GPUs, "
                                                "else 0; 0.5 shares one)")
    cpus_per_replica: float | None = _opt(None, "CPUs each model replica reserves (default: 1, or an equal share "
                                                "when that would not fit)")
    api_keys_file: str | None = _opt(None, "require an X-API-Key header on /v1/*: one accepted key per line "
                                           "(also $SEQLAB_API_KEYS, comma-separated); off when neither is set")
    access_log: bool = _opt(True, "no log line per request from the gateway and model replicas (errors are "
                                  "still logged)", flag="--no-access-log")


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per :class:`ServeOptions` field, in a ``serve`` group."""
    group = parser.add_argument_group("serve")
    for f in dataclasses.fields(ServeOptions):
        if f.type == "bool":  # on by default; the flag turns it off
            group.add_argument(f.metadata["flag"], dest=f.name, action="store_false", default=True,
                               help=f.metadata["help"])
            continue
        kind = {"int": int, "float": float}.get(f.type.split(" ")[0], str)
        shown = f" (default: {f.default})" if f.default is not None else ""
        group.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, type=kind, default=f.default,
                           help=f"{f.metadata['help']}{shown}")


def serve_options(args) -> ServeOptions:
    """The :class:`ServeOptions` of parsed flags (a field without a flag keeps its default)."""
    return ServeOptions(**{f.name: getattr(args, f.name) for f in dataclasses.fields(ServeOptions)
                           if hasattr(args, f.name)})


def deployment_name(key: str) -> str:
    """``model-<name>`` or ``model-<name>-v<version>``: what a Serve config tunes a model by."""
    return "model-" + key.replace(":", "-v")


def max_ongoing(max_batch_size: int) -> int:
    """Room for two full batches in flight, so a batch can fill while the last one runs."""
    return max(64, 2 * max_batch_size)


def autoscaling(opts: ServeOptions) -> dict | None:
    """The autoscaling config of every model deployment, or None for a fixed number of replicas."""
    if not opts.max_replicas:
        return None
    return {"min_replicas": opts.min_replicas or 1, "max_replicas": opts.max_replicas,
            "target_ongoing_requests": opts.target_ongoing_requests or 16, "upscale_delay_s": 3,
            "downscale_delay_s": 60}


def gpus_per_replica(value: float | None) -> float:
    """Unset: one GPU per replica when the cluster has GPUs, else none."""
    if value is not None:
        return float(value)
    import ray

    return 1.0 if ray.is_initialized() and ray.cluster_resources().get("GPU", 0) > 0 else 0.0


def cpus_per_replica(value: float | None, replicas: int) -> float:
    """Unset: one CPU per replica, or an equal share when every replica of every model would not
    otherwise fit beside the gateway (a laptop serving several models)."""
    if value is not None:
        return float(value)
    import ray

    total = ray.cluster_resources().get("CPU", 1.0) if ray.is_initialized() else float(os.cpu_count() or 1)
    return max(0.1, min(1.0, round((total - 0.5) / max(replicas, 1), 2)))
