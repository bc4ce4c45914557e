"""The command line: ``lingma-mcp`` and its subcommands (doctor, ask, demo)."""
