"""The benchmarks' parts: the plain loop, the pipeline breakdown, the GPU script's dry run on CPU,
the search figures, and the grid/value-list search options they rely on."""

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

from seqlab.config import DataConfig, ModelConfig, SearchConfig, TrainConfig
from seqlab.data.select import load_split, prepare_data
from seqlab.errors import SeqlabError
from seqlab.train.driver import prepare
from seqlab_tools import perf

JOBS = Path(__file__).resolve().parents[2] / "jobs"


def job(name):
    spec = importlib.util.spec_from_file_location(name, JOBS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def small():
    data_cfg = DataConfig(dataset="cfpb", limit=160, max_len=32)
    model_cfg = ModelConfig(model="lstm", options={"embed_dim": 16, "hidden": 16})
    return data_cfg, model_cfg, prepare(data_cfg, model_cfg)


def test_plain_loop_sees_every_training_row_once_per_epoch(small):
    _, model_cfg, inputs = small
    got = perf.plain_fit(inputs, model_cfg, TrainConfig(epochs=2, batch_size=32), threads=1)
    n = len(inputs.splits["train"])
    assert [e["epoch"] for e in got["epochs"]] == [1, 2]
    for e in got["epochs"]:
        assert e["train_samples_per_s"] * e["epoch_time_s"] == pytest.approx(n)
        assert e["train_tokens_per_s"] > e["train_samples_per_s"]  # texts are longer than one token
    assert got["wall_s"] > sum(e["epoch_time_s"] for e in got["epochs"])  # validation is in the wall time


def test_pipeline_profile_times_each_stage(small):
    data_cfg, model_cfg, inputs = small
    frame = load_split(prepare_data(data_cfg), "train", data_cfg)
    got = perf.profile_pipeline(inputs, frame, model_cfg, TrainConfig(batch_size=32), threads=1)
    stages = ("tokenise", "collate", "to_device", "step")
    assert all(got[f"{s}_ms"] > 0 for s in stages)
    assert sum(got[f"{s}_share"] for s in stages) == pytest.approx(1.0)
    assert got["step_ms"] > got["collate_ms"]  # an LSTM's forward and backward outweigh padding a batch
    assert got["batch_rows"] == 32


def test_gpu_script_dry_run_on_cpu(tmp_path):
    bench = job("bench_gpu")
    bench.main(["--device", "cpu", "--models", "lstm", "--rows", "128", "--max-len", "400", "--batch-size", "16",
                "--steps", "4", "--out", str(tmp_path)])
    table = pd.read_csv(tmp_path / "gpu_dry_run_cpu.csv").set_index("batching")
    assert list(table.index) == ["bucketed", "padded", "packed"]
    assert "error" not in table or table["error"].isna().all()
    assert (table["step_samples_per_s"] > 0).all() and (table["e2e_samples_per_s"] > 0).all()
    # length bucketing is what keeps padding small
    assert table.loc["bucketed", "padding_share"] < table.loc["padded", "padding_share"]
    md = (tmp_path / "gpu_dry_run_cpu.md").read_text()
    assert "no GPU" in md and "Commit:" in md


def test_gpu_script_refuses_cuda_without_a_gpu(capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit) as exc:
        job("bench_gpu").parse(["--device", "cuda"])
    assert exc.value.code == 2 and "no GPU is visible" in capsys.readouterr().err


def test_search_overhead_and_epochs_to_reach():
    reports = pd.DataFrame({  # two trials of three epochs, reported interleaved
        "trial": ["a", "b", "a", "b", "a", "b"], "timestamp": [1, 2, 3, 4, 5, 6],
        "time_total_s": [10, 12, 20, 24, 30, 36], "val_macro_f1": [0.50, 0.60, 0.70, 0.65, 0.79, 0.66]})
    got = perf.search_overhead(reports, wall_s=40.0, concurrent=2)
    assert got["trials"] == 2 and got["epochs_run"] == 6
    assert got["ideal_s"] == pytest.approx(33.0) and got["overhead"] == pytest.approx(40 / 33)
    assert perf.epochs_to_reach(reports, 0.79 * 0.99, "val_macro_f1", "max") == 5
    assert perf.epochs_to_reach(reports, 0.69, "val_macro_f1", "max") == 3
    assert perf.epochs_to_reach(reports, 0.9, "val_macro_f1", "max") is None
    losses = reports.assign(val_loss=[3.0, 2.0, 1.5, 1.2, 1.1, 1.0])
    assert perf.epochs_to_reach(losses, 1.15, "val_loss", "min") == 5


def test_search_value_lists_and_grid():
    from ray import tune

    from seqlab.tune.space import space_of, to_tune

    def search_space(cfg):
        return to_tune(space_of(cfg))

    cfg = SearchConfig(hidden_values="16,64", dropout_values="0,0.5", grid=True)
    space = search_space(cfg)
    assert space["hidden"] == tune.grid_search([16, 64]) and space["dropout"] == tune.grid_search([0.0, 0.5])
    chosen = search_space(SearchConfig(hidden_values="16,64"))
    assert chosen["hidden"].categories == [16, 64] and not isinstance(chosen["dropout"], dict)
    with pytest.raises(SeqlabError, match="grid needs both"):
        SearchConfig(hidden_values="16,64", grid=True)
    with pytest.raises(SeqlabError, match="whole numbers"):
        SearchConfig(hidden_values="16,6.5")
    with pytest.raises(SeqlabError, match=r"dropout_values must lie in \[0, 1\)"):
        SearchConfig(dropout_values="0,1.5")
    with pytest.raises(SeqlabError, match="comma-separated numbers"):
        SearchConfig(dropout_values="0,high")


@pytest.mark.ray
def test_grid_search_runs_every_combination_for_all_epochs(ray_local, tmp_path, small):
    from seqlab.tune.search import run_search

    _, model_cfg, inputs = small
    train_cfg = TrainConfig(name="g", storage_path=str(tmp_path), epochs=2, batch_size=32, num_workers=1,
                            keep_checkpoints=1)
    cfg = SearchConfig(search_name="grid", hidden_values="8,16", dropout_values="0.1", grid=True, max_concurrent=2)
    results = run_search(inputs, model_cfg, train_cfg, cfg)
    ran = sorted((r.path.rsplit("/", 1)[-1], int(r.metrics_dataframe["epoch"].max())) for r in results)
    assert ran == [("h008-do0.1000", 2), ("h016-do0.1000", 2)]
    assert all(r.error is None for r in results)


def test_benchmarks_refuse_an_unknown_model(capsys):
    with pytest.raises(SystemExit):
        job("bench_train").parse(["--models", "lstm,gpt9"])
    assert "unknown model 'gpt9'; models: lstm, lstm-stacked" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        job("bench_train").parse(["--workers", "1,3", "--cpus", "2"])
    assert "--workers must divide --cpus (2) evenly" in capsys.readouterr().err
