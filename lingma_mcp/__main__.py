"""``python -m lingma_mcp``: the same as the ``lingma-mcp`` command."""

import sys

from .cli import main

sys.exit(main())
