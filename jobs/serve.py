"""Ray job entry point: `ray job submit --working-dir . -- python jobs/serve.py [options]`.

Same options as `seqlab serve --help`.
"""

import sys

from seqlab.cli import main

if __name__ == "__main__":
    main(["serve", *sys.argv[1:]])
