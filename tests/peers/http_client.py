"""Drives an MCP server over Streamable HTTP (through `mcp-audit proxy --listen`) with the official
Python SDK client. Prints what the client received as one JSON object.

Usage: http_client.py <url> <mode: legacy|2026-07-28> [bearer token] [concurrent clients]
With a count of clients, that many clients connect at once and each calls `echo` (the
message names the client), and only the answers are printed.
"""

import json
import sys

import anyio
import httpx2
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client

from client_common import read_and_prompt, sampling, text_of


def transport(url, token):
    headers = {"User-Agent": "mcp-audit-http-test/1"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return streamable_http_client(url, http_client=httpx2.AsyncClient(headers=headers, timeout=30))


async def session(url, mode, token):
    seen = {}
    async with Client(transport(url, token), mode=mode, sampling_callback=sampling) as client:
        tools = await client.list_tools()
        seen["tools"] = sorted(t.name for t in tools.tools)

        echo = await client.call_tool("echo", {"message": "hello over http"})
        seen["echo"] = text_of(echo)

        failed = await client.call_tool("get-sum", {"a": "not a number", "b": 2})
        seen["failed"] = {"is_error": getattr(failed, "is_error", None), "text": text_of(failed)}

        await read_and_prompt(client, seen)

        if mode == "legacy":
            sampled = await client.call_tool("trigger-sampling-request", {"prompt": "say hi", "maxTokens": 20})
            seen["sampling"] = text_of(sampled)
    return seen


async def many(url, mode, token, count):
    answers = [None] * count

    async def one(i):
        async with Client(transport(url, token), mode=mode) as client:
            result = await client.call_tool("echo", {"message": f"client {i}"})
            answers[i] = text_of(result)

    async with anyio.create_task_group() as tg:
        for i in range(count):
            tg.start_soon(one, i)
    return {"answers": answers}


async def main(argv):
    url, mode = argv[0], argv[1]
    token = argv[2] if len(argv) > 2 and argv[2] else None
    if len(argv) > 3:
        seen = await many(url, mode, token, int(argv[3]))
    else:
        seen = await session(url, mode, token)
    print(json.dumps(seen))


if __name__ == "__main__":
    anyio.run(main, sys.argv[1:])
