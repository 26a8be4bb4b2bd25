"""Ray job entry point: `ray job submit --working-dir . -- python jobs/train.py [options]`.

Same options as `seqlab train --help`.
"""

import sys

from seqlab.cli import main

if __name__ == "__main__":
    main(["train", *sys.argv[1:]])
