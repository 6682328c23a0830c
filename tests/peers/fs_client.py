"""Drives the official filesystem server through `mcp-audit proxy` (legacy handshake, Python SDK).

Usage: fs_client.py <root directory> <proxy command...>
The client offers <root directory> as its only root, so the server asks for it (`roots/list`, a
server-to-client request); then it writes, reads, and tries to read outside the root.
"""

import json
import sys
from pathlib import Path

import anyio
from mcp import types
from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters


async def main(root, command):
    async def roots(context):
        return types.ListRootsResult(roots=[types.Root(uri=Path(root).as_uri(), name="root")])

    params = StdioServerParameters(command=command[0], args=command[1:])
    seen = {}
    async with Client(params, mode="legacy", list_roots_callback=roots) as client:
        note = str(Path(root) / "note.txt")
        # The server replaces its allowed directories with our roots once it has asked for them.
        for _ in range(50):
            allowed = await client.call_tool("list_allowed_directories", {})
            if root in allowed.content[0].text:
                break
            await anyio.sleep(0.1)
        await client.call_tool("write_file", {"path": note, "content": "audited hello"})
        read = await client.call_tool("read_text_file", {"path": note})
        seen["read"] = read.content[0].text
        outside = await client.call_tool("read_text_file", {"path": "/etc/hostname"})
        seen["outside_is_error"] = getattr(outside, "is_error", None)
    print(json.dumps(seen))


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2:])
