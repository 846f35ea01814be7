"""Python comparison benchmark: ``python benches/bench.py [workload names] [--threads N]``.

Same as ``python -m ferroconv bench``; needs ferroconv installed.
"""

import sys

from ferroconv.bench import main

if __name__ == "__main__":
    sys.exit(main())
