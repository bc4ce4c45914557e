"""``python -m lingma_mcp.sim``: the same as the ``lingma-sim`` command."""

import sys

from lingma_mcp.sim.cli import main

sys.exit(main())
