"""``python -m lingma_mcp``: the same as the ``lingma-mcp`` command."""

import sys

from .cli.main import main

sys.exit(main())
