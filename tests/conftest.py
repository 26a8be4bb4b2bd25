import os

import pytest

from seqlab_tools.cluster import S3Server, free_port  # noqa: F401  (tests import free_port from here)

# Real data, cached once per machine under $SEQLAB_HOME (default ~/.seqlab); runs go to tmp folders.
os.environ.setdefault("RAY_TRAIN_ENABLE_PRINT_PATCH", "0")


def batch(lengths, vocab=50, pad_to=None, seed=0):
    """Random token ids right-padded with 0: ``(tokens (b, t), lengths (b,))``."""
    import torch

    g = torch.Generator().manual_seed(seed)
    t = max(lengths) if pad_to is None else pad_to
    tokens = torch.zeros(len(lengths), t, dtype=torch.long)
    for i, n in enumerate(lengths):
        tokens[i, :n] = torch.randint(2, vocab, (n,), generator=g)
    return tokens, torch.tensor(lengths)



@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """A real S3-compatible server (SeaweedFS) with a ``seqlab`` bucket; this process's AWS environment
    points at it while the module's tests run."""
    with pytest.MonkeyPatch.context() as mp, S3Server(tmp_path_factory.mktemp("s3")) as server:
        for k, v in server.env().items():
            mp.setenv(k, v)
        yield server


@pytest.fixture(scope="session")
def postgres(tmp_path_factory):
    """A real PostgreSQL server (the binaries of the pgserver wheel), listening on a Unix socket in its
    data folder; yields its URL (``postgresql://postgres:@/postgres?host=...``)."""
    import pgserver

    server = pgserver.get_server(tmp_path_factory.mktemp("pg"), cleanup_mode="stop")
    yield server.get_uri()
    server.cleanup()


TINY = {"lstm": {"embed_dim": 8, "hidden": 8}, "char-lstm": {"hidden": 16, "conditional": True},
        "smiles-vae": {"embed_dim": 8, "hidden": 16, "latent": 4, "word_dropout": 0.0}}
TINY_TEXTS = ["the pill gave me acne and cramps", "my skin cleared up in a month", "pain in my back every day",
              "i was charged twice on my card", "the bank lost my mortgage payment"]


def tiny_checkpoint(path, name: str = "lstm", labels=("billing", "loans", "other"), metrics: dict | None = None,
                    seed: int = 0, options: dict | None = None, representation: str = "smiles"):
    """A real (untrained) seqlab checkpoint of a small model, as training writes it; ``options`` are the
    model's (default: ``TINY[name]``); a molecule model's ``representation`` is smiles or selfies."""
    import torch

    from seqlab import checkpoint
    from seqlab.models import MODELS, build_model
    from seqlab.tokenizers.chars import CharTokenizer
    from seqlab.tokenizers.words import WordTokenizer

    spec = MODELS[name]
    if spec.task == "molecule":
        from seqlab.tokenizers.selfies import SelfiesTokenizer
        from seqlab.tokenizers.smiles import SmilesTokenizer

        kind = {"smiles": SmilesTokenizer, "selfies": SelfiesTokenizer}[representation]
        tok = kind.build(["CCO", "c1ccccc1Cl", "CC(N)C(=O)O", "C[C@@H](N)O", "CC(=O)Oc1ccccc1C(=O)O"])
    elif spec.tokenizer == "char":
        tok = CharTokenizer.build(TINY_TEXTS)
    elif spec.tokenizer == "ngrams":
        from seqlab.tokenizers.ngrams import NgramTokenizer

        tok = NgramTokenizer.build(TINY_TEXTS, min_df=1)
    else:
        tok = WordTokenizer.build(TINY_TEXTS, max_size=100, min_freq=1, max_len=20)
    torch.manual_seed(seed)
    options = TINY[name] if options is None else options
    kwargs = {**({"dropout": 0.0} if "dropout" in spec.options() else {}),
              **({"max_len": 20} if spec.takes_max_len else {}), **options}
    model = build_model(name, vocab_size=len(tok), num_classes=len(labels), **kwargs)
    meta = {"task": spec.task, "model": {"name": name, "kwargs": kwargs}, "labels": list(labels),
            "vocab_size": len(tok), "epoch": 2, "data": {"name": "tiny", "sha256": "0" * 64},
            "metrics": metrics or {"val_macro_f1": 0.5, "val_loss": 1.0}}
    optimizer = torch.optim.AdamW(model.parameters())  # training writes its state too; a registry leaves it out
    checkpoint.save(path, model=model, optimizer=optimizer, meta=meta, tokenizer=tok.to_dict())
    return path


# Under `make test` two pytest processes (pytest-xdist) run side by side: one takes every test that
# starts Ray, in collection order (the multi-node cluster first, then the local instance, ``ray_local``),
# the other the tests that need no Ray. Two Ray instances at once on two cores starve each other: a
# search's trials then leave their placement groups reserved and a Serve app waits for CPUs forever.
RAY_FILES = ("tests/cluster/test_cluster.py", "tests/jobs/", "tests/serve/test_serving.py",
             "tests/serve/test_web_page.py", "tests/train/test_data_parallel.py",
             "tests/tools/test_perf.py::test_grid_search_runs_every_combination_for_all_epochs",
             "tests/tokenizers/test_smiles.py::test_pool_in_a_ray_driver_exits_quietly")


def group_of(nodeid: str) -> str | None:
    """"ray" for a test in ``RAY_FILES`` (a folder ending in /, a file, or one test: file::name), else None."""
    path = nodeid.split("::", 1)[0]
    test = nodeid.split("[", 1)[0]
    return "ray" if any(path == f or test == f or (f.endswith("/") and path.startswith(f)) for f in RAY_FILES) else None


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """pytest-xdist's scheduler with one work unit for the Ray tests (``RAY_FILES``) and one per other test.
    (Its own ``--dist loadgroup`` renames node ids, which pytest 9.2 no longer allows.)"""
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return group_of(nodeid) or nodeid

    return GroupScheduling(config, log)


# The Ray group is the suite's critical path: the other process yields it the CPU (a higher nice value,
# set once, when that process runs its first test; its children inherit it). Its tests' time limits
# allow for that.
NICE = int(os.environ.get("SEQLAB_TEST_NICE", "5"))


# $SEQLAB_TEST_TIMELINE: a file that gets one JSON line per test phase (xdist worker, test, phase, start, seconds),
# to see which process holds the suite's critical path and when the other one is done
TIMELINE = os.environ.get("SEQLAB_TEST_TIMELINE")


def pytest_runtest_logreport(report):
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if TIMELINE and worker:
        import json

        with open(TIMELINE, "a") as f:
            f.write(json.dumps({"worker": worker, "test": report.nodeid, "when": report.when,
                                "start": round(getattr(report, "start", 0), 2), "s": round(report.duration, 2)}) + "\n")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    if os.environ.get("PYTEST_XDIST_WORKER") and group_of(item.nodeid) is None and os.nice(0) < NICE:
        os.nice(NICE - os.nice(0))


def pytest_collection_modifyitems(config, items):
    """The cluster tests (``ray start``) before any local instance when one process runs them all; a
    Ray test outside its group's files would run beside another Ray instance: refused."""
    misplaced = [item.nodeid for item in items
                 if (item.get_closest_marker("ray") or item.get_closest_marker("cluster")) and group_of(item.nodeid) is None]
    if misplaced:
        raise pytest.UsageError(f"Ray tests outside tests/conftest.py RAY_FILES: {', '.join(misplaced)}")
    items.sort(key=lambda item: item.get_closest_marker("cluster") is None)


@pytest.fixture(scope="session")
def ray_local():
    """One real local Ray instance (2 CPUs) for every integration test."""
    import ray

    from seqlab.train.driver import init_ray

    # started as the jobs start theirs: workers at nice 0, as cluster.yaml's too (Ray's default, 15, would put
    # them below the pytest process that runs the other tests; see NICE). The dashboard serves the State API,
    # which Train V2 needs to release finished trials' resources.
    init_ray(num_cpus=2)
    yield ray
    from ray import serve

    serve.shutdown()
    ray.shutdown()
