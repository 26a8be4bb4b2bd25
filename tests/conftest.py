import os
import socket

import pytest

# Real data, cached once per machine under $SEQLAB_HOME (default ~/.seqlab); runs go to tmp folders.
os.environ.setdefault("RAY_TRAIN_ENABLE_PRINT_PATCH", "0")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
