import os

import pytest

from seqlab.cluster import free_port  # noqa: F401  (tests import it from here)

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




def pytest_collection_modifyitems(config, items):
    """The cluster tests start their own Ray nodes with ``ray start``: run them before any local instance."""
    items.sort(key=lambda item: item.get_closest_marker("cluster") is None)


@pytest.fixture(scope="session")
def ray_local():
    """One real local Ray instance (2 CPUs) for every integration test."""
    import ray

    # the dashboard serves the State API, which Train V2 needs to release finished trials' resources
    ray.init(num_cpus=2, log_to_driver=True)
    yield ray
    from ray import serve

    serve.shutdown()
    ray.shutdown()
