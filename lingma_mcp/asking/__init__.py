"""The asking service: what the MCP face and the command line ask of Lingma, knowing no MCP."""
