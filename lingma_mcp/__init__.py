"""lingma-mcp: Lingma (Tongyi Lingma) as an MCP server."""

__version__ = "0.1.0"
