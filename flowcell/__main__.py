"""``python -m flowcell``: the same as the ``flowcell`` console script."""

import sys

from flowcell.cli import main

sys.exit(main())
