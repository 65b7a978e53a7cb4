"""``python -m hamfeat.cli``: the same command line as ``python -m hamfeat``."""

import sys

from hamfeat.cli import main

sys.exit(main())
