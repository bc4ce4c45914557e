"""The start-up baseline: an MCP server on the same SDK that does nothing."""

from mcp.server.mcpserver import MCPServer

server = MCPServer("minimal")


@server.tool()
def noop() -> str:
    """Does nothing."""
    return ""


if __name__ == "__main__":
    server.run("stdio")
