"""Drives a server through `mcp-audit proxy` in the stateless 2026-07-28 protocol (no initialize),
with the official Python SDK client. Prints what the client received as one JSON object.

Usage: modern_client.py <proxy command...>
"""

import json
import sys

import anyio
from mcp import types
from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters


async def roots(context):
    return types.ListRootsResult(roots=[types.Root(uri="file:///workspace", name="workspace")])


async def main(command):
    params = StdioServerParameters(command=command[0], args=command[1:])
    seen = {}
    async with Client(params, mode="2026-07-28", list_roots_callback=roots) as client:
        tools = await client.list_tools()
        seen["tools"] = sorted(t.name for t in tools.tools)
        added = await client.call_tool("add", {"a": 2, "b": 3})
        seen["add"] = [c.text for c in added.content if getattr(c, "type", None) == "text"]
        failed = await client.call_tool("fail", {"reason": "on purpose"})
        seen["fail"] = {"is_error": getattr(failed, "is_error", None)}
        counted = await client.call_tool("count_roots", {})
        seen["count_roots"] = [c.text for c in counted.content if getattr(c, "type", None) == "text"]
    print(json.dumps(seen))


if __name__ == "__main__":
    anyio.run(main, sys.argv[1:])
