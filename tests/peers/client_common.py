"""What the Python SDK client scripts share (the stdio `legacy_client.py` and `http_client.py`),
so that both transports are driven through the same steps and answered the same way.
Imported from the script's own directory, which Python puts first on the module path.
"""

from mcp import types


async def sampling(context, params):
    # A stand-in model: answers every sampling request the server makes of the client.
    return types.CreateMessageResult(
        role="assistant",
        content=types.TextContent(type="text", text="sampled answer"),
        model="test-model",
        stopReason="endTurn",
    )


def text_of(result):
    return [c.text for c in result.content if getattr(c, "type", None) == "text"]


async def read_and_prompt(client, seen):
    """Reads the first resource and gets the first prompt that needs no arguments, noting both
    in `seen`."""
    resources = await client.list_resources()
    uri = str(resources.resources[0].uri)
    read = await client.read_resource(uri)
    seen["resource"] = {"uri": uri, "contents": len(read.contents)}

    prompts = await client.list_prompts()
    simple = next(p for p in prompts.prompts if not any(a.required for a in (p.arguments or [])))
    prompt = await client.get_prompt(simple.name, {})
    seen["prompt"] = {"name": simple.name, "messages": len(prompt.messages)}
