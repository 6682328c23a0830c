"""A small MCP server in the 2026-07-28 style (the official Python SDK's MCPServer), over stdio,
or over Streamable HTTP with `modern_server.py http PORT [stateful]` (`https PORT CERT KEY`:
over TLS).

Tools: `add` (returns the sum), `fail` (always reports a tool error), `count_roots` (asks
the client for its roots: an `input_required` round trip) and `request_query` (over HTTP: the
query string of the request that called it, as the server received it).
"""

from typing import Annotated

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.resolve import ListRoots, Resolve
from mcp_types import ListRootsResult

server = MCPServer("modern-test-server")


@server.tool()
def add(a: int, b: int) -> int:
    """Adds two numbers."""
    return a + b


@server.tool()
def fail(reason: str) -> str:
    """Always fails, with the given reason."""
    raise ValueError(reason)


def ask_for_roots() -> ListRoots:
    # Needs the client's roots: in 2026-07-28 the server answers `input_required` and the
    # client retries the call, with a new request id, carrying the answer.
    return ListRoots()


@server.tool()
def count_roots(roots: Annotated[ListRootsResult, Resolve(ask_for_roots)]) -> int:
    """Counts the client's roots."""
    return len(roots.roots)


@server.tool()
def request_query(ctx: Context) -> str:
    """The query string of the HTTP request that called this tool ("" over stdio)."""
    request = ctx.request_context.request
    return str(request.url.query) if request is not None else ""


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["https"]:
        # `https PORT CERT KEY`: stateless with JSON answers, over TLS.
        import uvicorn

        app = server.streamable_http_app(json_response=True, stateless_http=True)
        uvicorn.run(
            app,
            host="127.0.0.1",
            port=int(sys.argv[2]),
            ssl_certfile=sys.argv[3],
            ssl_keyfile=sys.argv[4],
            log_level="warning",
        )
    elif sys.argv[1:2] == ["http"]:
        # `http PORT`: stateless with JSON answers; `http PORT stateful`: sessions and streams.
        stateful = sys.argv[3:4] == ["stateful"]
        server.run(
            "streamable-http",
            port=int(sys.argv[2]),
            json_response=not stateful,
            stateless_http=not stateful,
        )
    else:
        server.run("stdio")
