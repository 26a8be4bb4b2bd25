"""Screenshots of the web page with real trained models: results/serving_page_<model>.png.

    python jobs/page_screenshot.py      # the CFPB LSTM, the conditional char generator and the SMILES VAE
    python jobs/page_screenshot.py --run cfpb=<checkpoint> --run mols=<checkpoint>

Each model is promoted into a temporary registry, served, and tried in headless Chromium.
"""

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from seqlab import registry
from seqlab_tools.cluster import free_port

ROOT = Path(__file__).resolve().parents[1]
RUNS = {"cfpb": "results/text/runs/cfpb-lstm-word2vec.json", "writer": "results/text/runs/gen-conditional.json",
        "mols": "results/molecules/runs/moses-smiles-vae.json"}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", action="append", default=[], help="name=checkpoint (default: the three runs above)")
    p.add_argument("--out", default=str(ROOT / "results"))
    args = p.parse_args(argv)
    from ray import serve

    from seqlab.serve.app import start
    from seqlab.serve.options import ServeOptions
    from seqlab_tools.browser import chromium, try_models

    runs = dict(r.split("=", 1) for r in args.run) or {
        name: json.loads((ROOT / path).read_text())["checkpoint"] for name, path in RUNS.items()}
    tmp = Path(tempfile.mkdtemp(prefix="seqlab-page-"))
    root = str(tmp / "registry")
    for name, checkpoint in runs.items():
        registry.promote(checkpoint, name, root)

    url = start(list(runs), ServeOptions(port=free_port(), registry=root))
    try:
        with chromium() as driver:
            seen = try_models(driver, url, shots=tmp / "shots")
    finally:
        serve.shutdown()
    for key, out in seen.items():
        target = Path(args.out) / f"serving_page_{key}.png"
        shutil.copy(out["screenshot"], target)
        print(f"{key}: {({k: v for k, v in out.items() if k != 'screenshot'})} -> {target}", flush=True)
    return seen


if __name__ == "__main__":
    main()
