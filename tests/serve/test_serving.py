"""Many registry models behind one Serve application, over real HTTP: routing by name and version,
dynamic batching, API keys, size limits, autoscaling, and clear 4xx answers for bad input."""

import asyncio
import json
from pathlib import Path

import pytest
import requests
from conftest import free_port, tiny_checkpoint

from seqlab import registry
from seqlab.cli import run
from seqlab.serve.options import ServeOptions

pytestmark = pytest.mark.ray
PORT = free_port()  # one Serve proxy for the module; each test's app replaces the last


def options(**kw) -> ServeOptions:
    return ServeOptions(**{"port": PORT, "max_texts": 16, "max_chars": 2000, "max_batch_size": 8,
                           "batch_wait_timeout_s": 0.05, "cpus_per_replica": 0.25, "max_body_bytes": 64 * 1024,
                           "access_log": False, **kw})


DEFAULT = options()


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serving")
    root = str(tmp / "registry")
    registry.promote(str(tiny_checkpoint(tmp / "c0", "lstm", seed=0)), "cfpb", root)
    registry.promote(str(tiny_checkpoint(tmp / "c1", "lstm", seed=1)), "cfpb", root)
    registry.promote(str(tiny_checkpoint(tmp / "g", "char-lstm")), "writer", root)
    registry.promote(str(tiny_checkpoint(tmp / "m", "smiles-vae")), "mols", root)
    return root


@pytest.fixture(scope="module")
def url(ray_local, root):
    from ray import serve

    from seqlab.serve.app import start

    yield start(["cfpb", "cfpb:1", "writer", "mols"], options(registry=root))
    serve.shutdown()  # the proxy too: other modules start Serve on their own ports


def post(url, path, body, **kw):
    return requests.post(f"{url}{path}", json=body, timeout=60, **kw)


def test_models_are_listed_with_their_tasks(url):
    models = requests.get(f"{url}/v1/models", timeout=30).json()["models"]
    assert [(m["key"], m["task"], m["version"]) for m in models] == [
        ("cfpb", "classify", 2), ("cfpb:1", "classify", 1), ("writer", "generate", 1), ("mols", "molecule", 1)]
    assert requests.get(f"{url}/healthz", timeout=30).json()["models"]["mols"] == "molecule"
    ready = requests.get(f"{url}/readyz", timeout=30)
    assert ready.status_code == 200 and all(ready.json()["models"].values())
    assert "/v1/models/{model}/classify" in requests.get(f"{url}/openapi.json", timeout=30).json()["paths"]


def test_requests_reach_the_model_and_version_they_name(url):
    texts = {"texts": ["i was charged twice on my card"]}
    v2 = post(url, "/v1/models/cfpb/classify", texts).json()["predictions"][0]["probabilities"]
    v1 = post(url, "/v1/models/cfpb:1/classify", texts).json()["predictions"][0]["probabilities"]
    default = post(url, "/v1/classify", texts).json()["predictions"][0]["probabilities"]
    assert v1 != v2 and default == v2  # two versions, two sets of weights; /v1/classify is the first classifier
    gen = post(url, "/v1/models/writer/generate", {"category": "loans", "length": 20, "seed": 3})
    assert gen.status_code == 200 and len(gen.json()["texts"][0]) <= 20
    mols = post(url, "/v1/models/mols/molecules/sample", {"n": 4, "seed": 1, "svg": True})
    assert mols.status_code == 200 and len(mols.json()["molecules"]) == 4
    enc = post(url, "/v1/models/mols/molecules/encode", {"smiles": ["CCO"]}).json()
    assert enc["latent_size"] == 4 and len(enc["latents"][0]) == 4
    opt = post(url, "/v1/molecules/optimize", {"objective": "qed", "start": "OCC", "budget": 32, "n": 3})
    assert opt.status_code == 200 and opt.json()["model"] == "mols:1" and opt.json()["decoded"] == 32, opt.text
    assert opt.json()["start"] == "CCO" and len(opt.json()["molecules"]) <= 3


def test_unknown_models_and_wrong_tasks_get_404_naming_the_choices(url):
    r = post(url, "/v1/models/nope/classify", {"texts": ["a"]})
    assert r.status_code == 404
    assert r.json()["error"].startswith("model 'nope' is not served here; available models: cfpb, cfpb:1, writer, mols")
    r = post(url, "/v1/models/writer/classify", {"texts": ["a"]})
    assert r.status_code == 404 and "use POST /v1/models/writer/generate" in r.json()["error"]
    r = post(url, "/v1/entities/classify", {"text": "IL-2 in T cells", "spans": [{"start": 0, "end": 4}]})
    assert r.status_code == 404 and "no model served here is an entity-mention classifier" in r.json()["error"]
    r = post(url, "/v1/models/cfpb:9/classify", {"texts": ["a"]})
    assert r.status_code == 404 and "available models" in r.json()["error"]


def test_concurrent_requests_are_batched_per_model(url):
    import aiohttp

    async def burst(n):
        async with aiohttp.ClientSession() as session:
            async def one(i):
                async with session.post(f"{url}/v1/models/cfpb:1/classify", json={"texts": [f"text {i}"]}) as r:
                    return r.status
            return await asyncio.gather(*(one(i) for i in range(n)))

    before = requests.get(f"{url}/v1/models/cfpb:1", timeout=30).json()["stats"]
    assert asyncio.run(burst(32)) == [200] * 32
    after = requests.get(f"{url}/v1/models/cfpb:1", timeout=30).json()["stats"]
    requests_seen, batches = after["requests"] - before["requests"], after["batches"] - before["batches"]
    assert requests_seen == 32 and batches < 32 and after["largest_batch"] > 1  # requests shared forward passes
    assert after["largest_batch"] <= DEFAULT.max_batch_size


def test_generation_streams_as_server_sent_events_that_join_into_the_answer(url):
    from seqlab_tools.loadtest import sse_events

    body = {"category": "loans", "prompt": "my ", "length": 300, "temperature": 1.5, "n": 2, "seed": 5}
    whole = post(url, "/v1/models/writer/generate", body).json()
    for path in ("/v1/models/writer/generate", "/v1/generate"):
        with requests.post(f"{url}{path}", json={**body, "stream": True}, stream=True, timeout=60) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream"), r.text
            events = list(sse_events(r.iter_lines(decode_unicode=True)))
        kinds = [kind for kind, _ in events]
        assert kinds[0] == "start" and kinds[-1] == "done" and set(kinds[1:-1]) == {"delta"}, kinds
        assert events[0][1] == {"model": "writer:1", "category": "loans", "prompt": "my ", "n": 2}
        steps = [data["texts"] for kind, data in events if kind == "delta"]  # one event a step
        assert 1 <= len(steps) <= 300 and all(len(s) == 2 and all(len(c) <= 1 for c in s) for s in steps)
        joined = ["my " + "".join(s[i] for s in steps) for i in range(2)]
        assert events[-1][1] == whole == {"model": "writer:1", "category": "loans", "texts": joined}
    # bad input is refused before the stream starts: a plain 4xx with the usual body
    r = post(url, "/v1/models/writer/generate", {"category": "nope", "stream": True})
    assert r.status_code == 422 and "unknown category 'nope'" in r.json()["error"]
    # a client that stops reading mid-stream leaves the replica answering
    with requests.post(f"{url}/v1/generate", json={**body, "length": 2000, "stream": True}, stream=True,
                       timeout=60) as r:
        next(r.iter_lines())
    assert post(url, "/v1/models/writer/generate", body).json() == whole


@pytest.mark.parametrize("path, kwargs, status, message", [
    ("/v1/models/cfpb/classify", {"json": {"texts": ["x" * 2001]}}, 413, "at most 2000"),
    ("/v1/models/cfpb/classify", {"data": b'{"texts": ["' + b"a" * 70000 + b'"]}',
                                  "headers": {"Content-Type": "application/json"}}, 413, "at most 65536"),
    ("/v1/models/cfpb/classify", {"data": (b"a" * 1000 for _ in range(100)),
                                  "headers": {"Content-Type": "application/json"}}, 413, "over 65536 bytes"),
    ("/v1/models/cfpb/classify", {"json": {"texts": "not a list"}}, 422, "texts: Input should be a valid list"),
    ("/v1/models/cfpb/classify", {"json": [1, 2]}, 422, "body is not a JSON object"),
    ("/v1/models/cfpb/classify", {"data": b"\xff\xfe", "headers": {"Content-Type": "application/json"}}, 422,
     "not valid JSON"),
    ("/v1/models/cfpb/classify", {"data": b'{"texts": ["\\ud800 lone"]}', "headers": {"Content-Type": "application/json"}},
     422, "unpaired surrogate"),
    ("/v1/models/cfpb/classify", {"data": b'{"texts": ["\xed\xa0\x80"]}', "headers": {"Content-Type": "application/json"}},
     422, "unpaired surrogate"),
    ("/v1/models/cfpb/classify", {"data": b'{"texts": ["\xff"]}', "headers": {"Content-Type": "application/json"}},
     400, "not UTF-8 JSON"),
    ("/v1/models/writer/generate", {"json": {"category": "nope"}}, 422, "nope"),
    ("/v1/models/writer/generate", {"json": {"length": -1}}, 422, "length"),
    ("/v1/models/mols/molecules/encode", {"json": {"smiles": ["C1CC"]}}, 422, "is not a valid molecule"),
    ("/v1/models/mols/molecules/decode", {"json": {"latents": [[1, 2]]}}, 422, "this model's latent vectors have 4"),
    ("/v1/models/mols/molecules/optimize", {"json": {"objective": "sa"}}, 422, "unknown property 'sa'"),
    ("/v1/models/mols/molecules/optimize", {"json": {"budget": 100000}}, 422, "budget"),
])
def test_bad_input_gets_a_clear_4xx(url, path, kwargs, status, message):
    r = requests.post(f"{url}{path}", timeout=60, **kwargs)
    assert r.status_code == status, r.text
    assert message in r.json()["error"], r.text


def test_a_client_error_is_an_answer_with_no_traceback_in_the_replica_log(url):
    """A 4xx found by a model replica comes back as a value: Serve logs no failed request for it."""
    import ray

    logs = Path(ray._private.worker._global_node.get_logs_dir_path()) / "serve"

    def failures() -> int:
        text = "".join(p.read_text(errors="replace") for p in logs.glob("replica_seqlab_model-*.log"))
        return text.count("Traceback") + text.count("Request failed")

    before = failures()
    for path, body in [("/v1/models/cfpb/classify", {"texts": []}),
                       ("/v1/models/mols/molecules/encode", {"smiles": ["C1CC"]}),
                       ("/v1/models/writer/generate", {"category": "nope"}),
                       ("/v1/models/writer/generate", {"category": "nope", "stream": True})]:
        r = post(url, path, body)
        assert r.status_code == 422 and r.json()["error"], r.text
    assert post(url, "/v1/models/cfpb/classify", {"texts": ["fine"]}).status_code == 200  # logs flushed by then
    assert failures() == before


def test_unicode_edge_cases_are_answered(url):
    for text in ["\u202eevil right-to-left", "emoji \U0001f600 and \u0000 nul", "\ud7ff" * 50, "  tabs\t\tand\nlines "]:
        r = post(url, "/v1/models/cfpb/classify", {"texts": [text]})
        assert r.status_code == 200, (text, r.text)
    assert requests.get(f"{url}/healthz", timeout=30).status_code == 200


def test_hostile_requests_all_get_4xx_and_the_server_stays_healthy(url):
    from seqlab_tools.loadtest import hostile_requests, send_hostile

    cases = hostile_requests(140, seed=1, max_texts=DEFAULT.max_texts, max_chars=DEFAULT.max_chars,
                             max_body_bytes=DEFAULT.max_body_bytes)
    assert len({kind for kind, *_ in cases}) == 14  # every kind of abuse is in the sample
    by_kind = send_hostile(url, cases, concurrency=8)
    statuses = {s for counts in by_kind.values() for s in counts}
    assert all(s.isdigit() and 400 <= int(s) < 500 for s in statuses), by_kind
    assert requests.get(f"{url}/healthz", timeout=30).status_code == 200
    assert post(url, "/v1/classify", {"texts": ["still answering"]}).status_code == 200


def test_the_page_is_served(url):
    r = requests.get(f"{url}/", timeout=30)
    assert r.status_code == 200 and "text/html" in r.headers["content-type"] and "/v1/models" in r.text


def test_api_keys(ray_local, root, tmp_path):
    from ray import serve

    from seqlab.serve.app import start

    keys = tmp_path / "keys"
    keys.write_text("# one key per line\nsecret-one\nsecret-two\n")
    url = start(["cfpb"], options(registry=root, api_keys_file=str(keys)))
    try:
        body = {"texts": ["a"]}
        r = post(url, "/v1/classify", body)
        assert r.status_code == 401 and "X-API-Key" in r.json()["error"]
        assert post(url, "/v1/classify", body, headers={"X-API-Key": "wrong"}).status_code == 403
        assert post(url, "/v1/classify", body, headers={"X-API-Key": "secret-two"}).status_code == 200
        assert post(url, "/v1/classify", body, headers={"Authorization": "Bearer secret-one"}).status_code == 200
        assert requests.get(f"{url}/healthz", timeout=30).status_code == 200  # probes need no key
        assert requests.get(f"{url}/", timeout=30).status_code == 200
    finally:
        serve.delete("seqlab")


def test_a_model_scales_out_under_load(ray_local, root):
    import threading
    import time

    from ray import serve

    from seqlab.serve.app import start

    url = start(["cfpb"], options(registry=root, min_replicas=1, max_replicas=2, target_ongoing_requests=1,
                                  max_batch_size=1))
    stop = threading.Event()

    def load():
        while not stop.is_set():
            post(url, "/v1/classify", {"texts": ["keep the replicas busy"] * 16})

    threads = [threading.Thread(target=load) for _ in range(6)]
    for t in threads:
        t.start()
    try:
        deadline, replicas = time.monotonic() + 90, 1
        while time.monotonic() < deadline and replicas < 2:
            dep = serve.status().applications["seqlab"].deployments["model-cfpb"]
            replicas = dep.replica_states.get("RUNNING", 0)
            time.sleep(1)
        assert replicas == 2
    finally:
        stop.set()
        for t in threads:
            t.join()
        serve.delete("seqlab")


def test_serve_config_deploys_with_serve_run(ray_local, root, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    import ray
    from ray import serve

    path = tmp_path / "serve.yaml"
    run(["registry", "serve-config", "--models", "cfpb:1,mols", "--registry", root, "--port", str(PORT),
         "--cpus-per-replica", "0.25", "-o", str(path)])
    serve_bin = str(Path(sys.executable).parent / "serve")
    address = ray.get_runtime_context().gcs_address
    out = subprocess.run([serve_bin, "run", "--address", address, "--non-blocking", str(path)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    try:
        import time

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            status = serve.status().applications.get("seqlab")
            if status and status.status == "RUNNING":
                break
            time.sleep(1)
        current = requests.get(f"http://127.0.0.1:{PORT}/v1/models", timeout=30)
        models = current.json()["models"]
        assert [m["key"] for m in models] == ["cfpb:1", "mols"]
    finally:
        serve.delete("seqlab")
    assert json.loads(json.dumps(models))[0]["version"] == 1
