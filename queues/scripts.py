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
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            await self.load(client)
            return await client.evalsha(self.sha, len(keys), *keys, *args)

    def queue(self, pipe: Pipeline, keys: list[str], args: list[Any]) -> None:
        """Add a call to a pipeline; run the pipeline with `run_pipeline`."""
        pipe.evalsha(self.sha, len(keys), *keys, *args)


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
