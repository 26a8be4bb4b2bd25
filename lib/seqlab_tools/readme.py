"""The README's cluster sequence as commands, so a test (and ``jobs/reliability.py``) runs exactly
what a user types: the ``bash`` block after ``<!-- cluster-sequence -->`` in README.md."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

from seqlab.errors import SeqlabError
from seqlab_tools.cluster import REPO

MARKER = "<!-- cluster-sequence -->"


def cluster_sequence(readme: Path = REPO / "README.md") -> list[str]:
    """The commands of the marked block, continuation lines joined, comments left out."""
    text = readme.read_text()
    if MARKER not in text:
        raise SeqlabError(f"{readme} has no {MARKER} block")
    block = re.search(r"```bash\n(.*?)```", text[text.index(MARKER):], re.S).group(1)
    commands, current = [], ""
    for line in block.splitlines():
        code = line.split(" #", 1)[0].rstrip() if not line.lstrip().startswith("#") else ""
        if not code.strip():
            continue
        current += " " + code.strip()
        if current.endswith("\\"):
            current = current[:-1].rstrip()
            continue
        commands.append(current.strip())
        current = ""
    return commands


def adapt(command: str, bucket: str, extra: dict[str, str]) -> str:
    """A README command for the stand-in: its bucket, and the flags of ``extra`` (keyed by a word of the
    command, e.g. ``jobs/train.py``) appended, where argparse lets the last of a flag win."""
    command = command.replace("YOUR-BUCKET", bucket)
    for key, flags in extra.items():
        if key in shlex.split(command):
            command = f"{command} {flags}"
    return command


def run(command: str, *, env: dict, timeout: float = 1200) -> subprocess.CompletedProcess:
    """One command in bash (``~`` expands to the ``HOME`` of ``env``), from the checkout's root."""
    done = subprocess.run(["bash", "-c", command], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)
    if done.returncode:
        raise SeqlabError(f"`{command[:160]}` failed ({done.returncode}):\n{done.stdout[-2500:]}\n{done.stderr[-2500:]}")
    return done


# appended to the README's commands on the stand-in: small data for 2 cores (argparse lets the last
# flag win), and one proxy on the head at a free port (the nodes share one machine, so they cannot
# each listen on the same port)
STAND_IN = {
    "jobs/train.py": "--limit 300 --max-len 64 --embed-dim 16 --batch-size 32 --epochs 2 --num-workers 2 "
                     "--use-gpu false",
    "jobs/tune.py": "--limit 300 --max-len 64 --embed-dim 16 --batch-size 32 --epochs 2 --num-samples 2 "
                    "--max-concurrent 2 --hidden-max 32 --use-gpu false",
    "serve-config": "--port {port} --proxy-location HeadOnly",
}


def run_sequence(cluster, s3, home: Path, bucket: str = "seqlab") -> dict:
    """The README's cluster sequence, command by command, from a user's machine: ``home`` (its own,
    holding the API key file that no node has), the cluster reached through its dashboard address.
    Returns the commands, the environment they ran in, the served URL and the API key."""
    import secrets

    from seqlab_tools.cluster import free_port, wait_for

    port, key = free_port(), secrets.token_hex(16)
    home.mkdir(parents=True, exist_ok=True)
    (home / "seqlab_api_keys").write_text(f"{key}\n")
    env = {**cluster.env(), **s3.env(), "HOME": str(home), "SEQLAB_HOME": str(home / ".seqlab"),
           "RAY_DASHBOARD_ADDRESS": cluster.address}
    commands = [adapt(c, bucket, {k: v.format(port=port) for k, v in STAND_IN.items()}) for c in cluster_sequence()]
    outputs = [run(c, env=env) for c in commands]
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: _status(f"{url}/readyz") == 200, 300, "the deployed application to be ready")
    return {"commands": commands, "outputs": outputs, "env": env, "url": url, "key": key}


def _status(url: str) -> int | None:
    import requests

    try:
        return requests.get(url, timeout=10).status_code
    except requests.RequestException:
        return None


def stop_serving(env: dict) -> None:
    """``serve shutdown`` on the cluster, and the ``serve.yaml`` the sequence wrote into the checkout."""
    run("serve shutdown -y", env=env)
    (REPO / "serve.yaml").unlink(missing_ok=True)
