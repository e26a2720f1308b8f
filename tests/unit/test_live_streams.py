"""What the watcher notes of the events it reads, before any refresh (no Redis: replies are given)."""

from __future__ import annotations

import asyncio

from queues.connections import ConnectionSettings
from queues.live.interest import Interest, JobRef, Viewers
from queues.live.options import WatcherOptions
from queues.live.pending import PendingWork
from queues.live.reachability import Reachability
from queues.live.streams import StreamTailer, events_key
from queues.models import QueueRef

EMAIL = QueueRef("default", "bull", "email")
SMS = QueueRef("default", "bull", "sms")
EMAIL_KEY = "bull:email:events"


def tailer(watched: tuple[JobRef, ...] = ()) -> tuple[StreamTailer, PendingWork]:
    connections = {"default": ConnectionSettings("default", "redis://127.0.0.1:1/0")}
    viewers = Viewers(connections, max_queues=10)
    viewers.add(Interest(jobs=watched))
    pending = PendingWork()
    streams = StreamTailer(
        connections, WatcherOptions(), viewers, pending, Reachability(pending), asyncio.Event()
    )
    return streams, pending


def test_retarget_reports_streams_added_and_queues_dropped() -> None:
    streams, _pending = tailer()
    assert streams.retarget([EMAIL]) == ([events_key(EMAIL)], [])
    assert streams.tails(EMAIL) and not streams.tails(SMS)
    assert streams.retarget([EMAIL, SMS]) == ([events_key(SMS)], [])
    assert streams.retarget([SMS]) == ([], [EMAIL])
    assert not streams.tails(EMAIL)


def test_events_mark_their_queue_arrivals_and_watched_jobs() -> None:
    watched = JobRef(EMAIL, "7")
    streams, pending = tailer((watched,))
    streams.retarget([EMAIL])
    reply = [
        [
            EMAIL_KEY.encode(),
            [
                (b"1-0", {b"event": b"waiting", b"jobId": b"7", b"prev": b"x"}),
                (b"2-0", {b"event": b"progress", b"jobId": b"8"}),
                (b"3-0", {b"event": b"completed", b"jobId": b"8"}),
            ],
        ],
        [b"bull:gone:events", [(b"1-0", {b"event": b"waiting", b"jobId": b"1"})]],
    ]
    assert streams._note(reply) == [EMAIL_KEY]
    assert pending.queues == {EMAIL}
    assert pending.arrivals == {EMAIL: {"waiting": 1, "completed": 1}}
    assert pending.jobs == {watched}  # job 8 is nobody's page
    assert pending.wake.is_set()


def test_resp3_replies_are_read_like_resp2() -> None:
    streams, pending = tailer()
    streams.retarget([EMAIL])
    assert streams._note({EMAIL_KEY.encode(): [[(b"5-0", {b"event": b"failed", b"jobId": b"1"})]]}) == [
        EMAIL_KEY
    ]
    assert pending.arrivals == {EMAIL: {"failed": 1}}
