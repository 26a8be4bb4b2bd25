"""Data parallelism checked by numbers, with the loop's own train_epoch and evaluation on Ray Train
workers (gloo on the session's local Ray instance, as on a CPU cluster)."""

import numpy as np
import pytest

pytestmark = pytest.mark.ray
ROWS = 16


def setup_module(module):
    # the workers cannot import this test module: its functions travel by value
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(module)  # 2 workers x batch 8, or 1 worker x batch 16: one step either way


def split():
    from seqlab.tasks.encoding import EncodedSplit
    from seqlab.tokenizers import ragged

    rng = np.random.default_rng(0)
    seqs = [rng.integers(2, 50, size=int(n)).tolist() for n in rng.integers(3, 12, size=ROWS)]  # lengths vary
    ids, offsets = ragged(seqs)
    return EncodedSplit(ids, offsets, rng.integers(0, 3, size=ROWS))


def one_step(config: dict) -> None:
    """A Ray Train worker: build the model, run train_epoch (one step), then report the parameters,
    whether every rank holds the same, and validation summed over ranks next to one process's."""
    import tempfile
    import types
    from pathlib import Path

    import ray.train
    import ray.train.torch
    import torch
    import torch.distributed as dist

    from seqlab.config import TrainConfig
    from seqlab.models import build_model
    from seqlab.tasks import make_task
    from seqlab.tasks.batches import evaluate
    from seqlab.train.loop import train_epoch

    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    torch.manual_seed(0)
    raw = build_model("lstm", vocab_size=50, num_classes=3, embed_dim=8, hidden=8, dropout=0.0, spatial_dropout=0.0)
    model = ray.train.torch.prepare_model(raw)
    # plain SGD: unlike Adam, its step scales with the gradient, so summed instead of averaged gradients show
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    spec = types.SimpleNamespace(train=TrainConfig(batch_size=config["batch"], epochs=1, seed=0, precision="fp32"))
    task, data = make_task("classify", 3), split()
    train_epoch(model, task, data, optimizer, torch.amp.GradScaler("cuda", enabled=False), epoch=0, spec=spec,
                rank=rank, world=world, device=torch.device("cpu"))
    params = torch.cat([p.detach().flatten() for p in raw.parameters()])
    gathered = [torch.zeros_like(params) for _ in range(world)]
    if world > 1:
        dist.all_gather(gathered, params)
    else:
        gathered = [params]
    ranked = evaluate(raw, data, task, rank=rank, world=world)
    alone = evaluate(raw, data, task)  # this process over the whole split
    metrics = {"params": params.tolist(), "equal_on_ranks": all(torch.equal(g, params) for g in gathered),
               "ranked": ranked, "alone": alone}
    with tempfile.TemporaryDirectory() as tmp:  # Ray Train keeps the metrics that come with a checkpoint
        Path(tmp, "step.json").write_text("{}")
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(tmp) if rank == 0 else None)


def fit(workers: int, batch: int, path) -> dict:
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    trainer = TorchTrainer(one_step, train_loop_config={"batch": batch}, torch_config=TorchConfig(backend="gloo"),
                           scaling_config=ScalingConfig(num_workers=workers, resources_per_worker={"CPU": 1}),
                           run_config=RunConfig(name=f"dp-{workers}", storage_path=str(path)))
    return trainer.fit().metrics


def test_two_workers_on_batch_b_match_one_worker_on_2b_rows(ray_local, tmp_path):
    two, one = fit(2, ROWS // 2, tmp_path), fit(1, ROWS, tmp_path)
    assert two["equal_on_ranks"] and one["equal_on_ranks"]  # every rank holds the same parameters after the step
    start = fit_params_before()
    assert not np.allclose(two["params"], start)  # the step moved them
    np.testing.assert_allclose(two["params"], one["params"], rtol=1e-5, atol=1e-6)  # the same step
    # validation summed over ranks = one process over the split: the same counts, the loss to float32 rounding
    assert (two["ranked"]["accuracy"], two["ranked"]["macro_f1"]) == (two["alone"]["accuracy"], two["alone"]["macro_f1"])
    assert two["ranked"]["loss"] == pytest.approx(two["alone"]["loss"], rel=1e-6)


def fit_params_before() -> np.ndarray:
    import torch

    from seqlab.models import build_model

    torch.manual_seed(0)
    model = build_model("lstm", vocab_size=50, num_classes=3, embed_dim=8, hidden=8, dropout=0.0, spatial_dropout=0.0)
    return torch.cat([p.detach().flatten() for p in model.parameters()]).numpy()
