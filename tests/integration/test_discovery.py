"""Discovery at size: a SCAN pass reads only the `meta` hashes it has not confirmed before."""

from __future__ import annotations

from redis.asyncio import Redis

from queues.connections import ConnectionSettings, close_clients
from queues.discovery import RECONFIRM_EVERY, Directory
from queues.models import QueueRef


async def write_meta(redis: Redis, *names: str) -> None:
    """Meta hashes as BullMQ's Queue writes them (its fingerprint: `opts.maxLenEvents`)."""
    for name in names:
        await redis.hset(f"bull:{name}:meta", "opts.maxLenEvents", 10_000)


async def hmget_calls(redis: Redis) -> int:
    stats = await redis.info("commandstats")
    return int(stats.get("cmdstat_hmget", {}).get("calls", 0))


async def test_a_pass_confirms_only_the_queues_it_has_not_seen(redis_url: str, redis_client: Redis) -> None:
    await write_meta(redis_client, *(f"q{index}" for index in range(50)))
    await redis_client.set("other:meta", "a string, not a queue")
    directory = Directory(ConnectionSettings("default", redis_url), interval=30)
    try:
        await directory.refresh()
        assert len(directory.queues or []) == 50

        await write_meta(redis_client, "newcomer")
        await redis_client.hset("bull:imposter:meta", "version", "someone-else")
        before = await hmget_calls(redis_client)
        await directory.refresh()
        assert await hmget_calls(redis_client) - before == 2  # the newcomer and the imposter only
        assert QueueRef("default", "bull", "newcomer") in (directory.queues or [])
        assert QueueRef("default", "bull", "imposter") not in (directory.queues or [])

        await redis_client.delete("bull:q7:meta")
        await directory.refresh()
        assert QueueRef("default", "bull", "q7") not in (directory.queues or [])
        assert len(directory.queues or []) == 50
    finally:
        await close_clients()


async def test_a_meta_hash_replaced_by_another_program_leaves_the_list_on_a_full_pass(
    redis_url: str, redis_client: Redis
) -> None:
    await write_meta(redis_client, "email", "billing")
    directory = Directory(ConnectionSettings("default", redis_url), interval=30)
    replaced = QueueRef("default", "bull", "billing")
    try:
        await directory.refresh()
        await redis_client.delete("bull:billing:meta")
        await redis_client.hset("bull:billing:meta", "version", "not-bullmq")
        passes = []
        while directory.passes % RECONFIRM_EVERY:
            await directory.refresh()
            passes.append(replaced in (directory.queues or []))
        assert passes and all(passes)  # kept while only new candidates are confirmed
        before = await hmget_calls(redis_client)
        await directory.refresh()
        assert await hmget_calls(redis_client) - before == 2
        assert directory.queues == [QueueRef("default", "bull", "email")]
    finally:
        await close_clients()
