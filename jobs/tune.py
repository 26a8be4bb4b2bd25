"""Ray job entry point: `ray job submit --working-dir . -- python jobs/tune.py [options]`.

Same options as `seqlab tune --help`.
"""

import sys

from seqlab.cli import main

if __name__ == "__main__":
    main(["tune", *sys.argv[1:]])
