"""``python -m hamfeat``: the command line."""

import sys

from hamfeat.cli import main

sys.exit(main())
