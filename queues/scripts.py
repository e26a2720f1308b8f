"""The read-only Lua scripts of queues/lua, called by SHA and loaded on first NOSCRIPT."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import NoScriptError, ResponseError

from queues.connections import is_cluster

LUA_DIR = Path(__file__).with_name("lua")


@dataclass(frozen=True)
class ReadScript:
    """A Lua script's source and SHA1; EVALSHA first so a warm Redis costs one command per call."""

    name: str
    source: str

    @cached_property
    def sha(self) -> str:
        """SHA1 of the source, as SCRIPT LOAD and EVALSHA name it."""
        return hashlib.sha1(self.source.encode()).hexdigest()

    async def load(self, client: Redis) -> None:
        """Make sure Redis has the script cached."""
        await client.script_load(self.source)

    async def call(self, client: Redis, keys: list[str], args: list[Any]) -> Any:
        """Run the script, loading it once when Redis does not know it (after a restart or flush)."""
        keys = cluster_keys(client, keys)
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            await self.load(client)
            return await client.evalsha(self.sha, len(keys), *keys, *args)

    def queue(self, pipe: Pipeline, keys: list[str], args: list[Any]) -> None:
        """Add a call to a pipeline; run the pipeline with `run_pipeline`."""
        keys = cluster_keys(pipe, keys)
        pipe.evalsha(self.sha, len(keys), *keys, *args)


def cluster_keys(client: object, keys: list[str]) -> list[str]:
    """The keys to declare for a script about one queue: on a Redis Cluster also the queue's `meta` hash.

    The scripts name a queue by its key prefix (`KEYS[1]`, a key that never exists) and build the key
    names they read. While a slot moves between nodes, a command whose keys all are missing on the old
    node is sent to the new one (ASK), which holds only the keys moved so far: a script would read
    part of the queue there and answer wrong counts without an error. With `meta` (which every BullMQ
    queue has) declared too, Redis answers TRYAGAIN instead (some keys are here, some not), which the
    client retries and otherwise raises: a read during the move waits or fails, and is never wrong.
    A cluster queue's keys share one slot by its {hash tag}, so the extra key changes no routing."""
    if keys and keys[0].endswith(":") and is_cluster(client):
        return [*keys, f"{keys[0]}meta"]
    return keys


INCLUDE = re.compile(r"^-- @include (\w+)$", re.MULTILINE)


@cache
def script(name: str) -> ReadScript:
    """The script `queues/lua/<name>.lua`; each `-- @include <file>` line becomes lua/includes/<file>.lua."""
    source = (LUA_DIR / f"{name}.lua").read_text()
    return ReadScript(name, INCLUDE.sub(lambda m: (LUA_DIR / "includes" / f"{m[1]}.lua").read_text(), source))


PIPELINE_RELOADS = 3


def server_wide(result: object) -> bool:
    """An error reply about the whole server rather than one key: BUSY (another script runs long) is
    answered to every command alike, so it is no queue's fault and fails the whole read."""
    return isinstance(result, ResponseError) and str(result).startswith("BUSY")


def _is_noscript(result: object) -> bool:
    return isinstance(result, NoScriptError) or (
        isinstance(result, ResponseError) and str(result).startswith("NOSCRIPT")
    )


async def run_pipeline(
    client: Redis,
    build: Callable[[Pipeline], None],
    scripts: list[ReadScript],
    *,
    per_command_errors: bool = False,
) -> list[Any]:
    """Build and run one non-transactional pipeline; on NOSCRIPT load the scripts and run it again (up
    to PIPELINE_RELOADS times: another SCRIPT FLUSH may come between the load and the run).

    An error reply raises, unless `per_command_errors`: then it stays in its place in the results (an
    exception object), so that one broken queue does not fail the reads of the others (a BUSY Redis
    still raises: see server_wide).
    """
    for attempt in range(PIPELINE_RELOADS + 1):
        pipe = client.pipeline(transaction=False)
        build(pipe)
        results: list[Any] = await pipe.execute(raise_on_error=False)
        if attempt < PIPELINE_RELOADS and any(_is_noscript(result) for result in results):
            for read_script in scripts:
                await read_script.load(client)
            continue
        for result in results:
            if isinstance(result, Exception) and (not per_command_errors or server_wide(result)):
                raise result
        return results
    raise AssertionError("unreachable")
