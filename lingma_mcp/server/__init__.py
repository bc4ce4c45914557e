"""The MCP face: tools, resources and progress, built on the official SDK."""
