"""Times `echo` calls as a user's client makes them: the official Python SDK client calls a server's
`echo` tool N times in a row, one call in flight, and prints each call's latency and the CPU time
the processes used meanwhile, as one JSON object. The proxy benchmark with real peers runs it
(`crates/cli/benches/proxy_real.rs`).

Usage: echo_latency.py <calls> <server command...>
The server command is spawned over stdio as an MCP client spawns a server: the server itself, a
relay in front of it, or `mcp-audit proxy ... -- <server>`.

CPU time is read from `/proc/<pid>/task/*/schedstat` (nanoseconds on the CPU, per thread) just
before the first timed call and just after the last, so that neither the start of Node.js nor
the proxy's recorder start and shutdown is counted: this process (the client), its child (the
server, or what sits in front of it) and the child's children (the server behind it); and per
thread of those two, its name, its CPU time and how many times it was put on a CPU (its
wake-ups), which is the profile of a call's path.
"""

import json
import os
import sys
import time

import anyio
from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters

WARM_UP = 50


def children(pid):
    """The processes whose parent is `pid` (read from /proc: no `children` file on every kernel)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: the fields follow the last ")".
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


def cpu_ns(pid):
    """Nanoseconds on the CPU of every living thread of `pid`."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


def threads(role, pid):
    """Each living thread of `pid`: (role, tid) -> (its name, ns on the CPU, times it was run)."""
    found = {}
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = f.read().strip()
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                ns, _, runs = (int(v) for v in f.read().split()[:3])
        except (OSError, ValueError):
            continue
        found[(role, tid)] = (name, ns, runs)
    return found


def snapshot():
    me = os.getpid()
    kids = children(me)
    grandchildren = [g for k in kids for g in children(k)]
    per_thread = {}
    for k in kids:
        per_thread.update(threads("child", k))
    for g in grandchildren:
        per_thread.update(threads("grandchild", g))
    return {
        "client": cpu_ns(me),
        "child": sum(cpu_ns(k) for k in kids),
        "grandchildren": sum(cpu_ns(g) for g in grandchildren),
    }, per_thread


def thread_deltas(before, after):
    """Per thread alive at the end: its name, and the CPU time and runs since `before`."""
    out = []
    for key, (name, ns, runs) in sorted(after.items()):
        _, ns0, runs0 = before.get(key, (name, 0, 0))
        out.append({"role": key[0], "name": name, "ns": ns - ns0, "runs": runs - runs0})
    return out


async def main(calls, command):
    params = StdioServerParameters(command=command[0], args=command[1:])
    async with Client(params, mode="legacy") as client:
        await client.list_tools()
        for i in range(WARM_UP):
            await client.call_tool("echo", {"message": f"warm-up {i}"})
        before, threads_before = snapshot()
        latencies = []
        for i in range(calls):
            start = time.perf_counter_ns()
            await client.call_tool("echo", {"message": f"hello {i}"})
            latencies.append(time.perf_counter_ns() - start)
        after, threads_after = snapshot()
    cpu = {k: after[k] - before[k] for k in before}
    report = {"latencies_ns": latencies, "cpu_ns": cpu}
    report["threads"] = thread_deltas(threads_before, threads_after)
    print(json.dumps(report))


if __name__ == "__main__":
    anyio.run(main, int(sys.argv[1]), sys.argv[2:])
