"""The main job, end to end: data, Ray Train, Ray Tune + Optuna, test figures, Ray Serve, one HTTP request.

    python jobs/pipeline.py            # about 10 minutes on 2 CPU cores, local Ray started here
    python jobs/pipeline.py --full     # full-size search
    ray job submit --working-dir . -- python jobs/pipeline.py

Same options as `seqlab demo --help`.
"""

import sys

from seqlab.cli import main

if __name__ == "__main__":
    main(["demo", *sys.argv[1:]])
