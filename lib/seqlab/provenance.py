"""What made a figure: command, commit, hardware, versions."""

from __future__ import annotations

import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path


def git_commit() -> str:
    root = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def hardware() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no GPU"
    return f"{os.cpu_count()} CPU cores ({cpu}){gpu}"


def versions() -> str:
    import torch

    parts = [f"python {platform.python_version()}", f"torch {torch.__version__}"]
    if torch.cuda.is_available():
        parts.append(f"cuDNN {torch.backends.cudnn.version()}")
    try:
        import ray
    except ImportError:  # the GPU benchmark runs on PyTorch alone
        return ", ".join(parts)
    return ", ".join([*parts, f"ray {ray.__version__}"])


def record(command: list[str] | None = None) -> dict:
    return {"command": shlex.join(command or ["seqlab", *sys.argv[1:]]), "commit": git_commit(),
            "hardware": hardware(), "versions": versions()}


def markdown(prov: dict) -> str:
    return "\n".join(f"- {k.capitalize()}: `{v}`" for k, v in prov.items())
