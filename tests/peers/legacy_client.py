"""Drives an MCP server through `mcp-audit proxy` with the official Python SDK (legacy handshake).

Usage: legacy_client.py <proxy command...>
The proxy command is spawned over stdio exactly as an MCP client would spawn a server. What the
client received is printed as one JSON object, so the test can compare it with the audit trail.
"""

import json
import sys

import anyio
from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters

from client_common import read_and_prompt, sampling, text_of


async def main(command):
    params = StdioServerParameters(command=command[0], args=command[1:])
    seen = {}
    async with Client(params, mode="legacy", sampling_callback=sampling) as client:
        tools = await client.list_tools()
        seen["tools"] = sorted(t.name for t in tools.tools)

        echo = await client.call_tool("echo", {"message": "hello through the proxy"})
        seen["echo"] = text_of(echo)

        try:
            failed = await client.call_tool("get-sum", {"a": "not a number", "b": 2})
            seen["failed"] = {"is_error": getattr(failed, "is_error", None), "text": text_of(failed)}
        except Exception as error:  # a JSON-RPC error surfaces as an exception
            seen["failed"] = {"exception": str(error)}

        await read_and_prompt(client, seen)

        sampled = await client.call_tool("trigger-sampling-request", {"prompt": "say hi", "maxTokens": 20})
        seen["sampling"] = text_of(sampled)

        with anyio.move_on_after(1.0) as scope:
            await client.call_tool("trigger-long-running-operation", {"duration": 30, "steps": 3})
        seen["cancelled"] = scope.cancelled_caught
    print(json.dumps(seen))


if __name__ == "__main__":
    anyio.run(main, sys.argv[1:])
