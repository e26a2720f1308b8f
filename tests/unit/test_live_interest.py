"""The watcher's interest bookkeeping: viewers counted in and out, what is counted and tailed."""

from __future__ import annotations

import logging

import pytest

from queues.live.interest import Interest, JobRef, Viewers
from queues.models import QueueRef

EMAIL = QueueRef("default", "bull", "email")
SMS = QueueRef("default", "bull", "sms")
OTHER = QueueRef("other", "bull", "email")
JOB = JobRef(SMS, "7")


def test_a_queue_stays_counted_while_one_of_its_viewers_remains() -> None:
    viewers = Viewers(["default"], max_queues=10)
    page = Interest(queues=(EMAIL,))
    viewers.add(page)
    viewers.add(page)
    viewers.remove(page)
    assert viewers.counted_queues() == [EMAIL]
    viewers.remove(page)
    assert viewers.counted_queues() == []
    viewers.remove(page)  # one unwatch too many counts nothing negative
    viewers.add(page)
    assert viewers.counted_queues() == [EMAIL]


def test_only_the_first_viewer_of_every_queue_asks_for_the_list() -> None:
    viewers = Viewers(["default"], max_queues=10)
    overview = Interest(all_queues=True)
    assert viewers.add(overview) is True
    assert viewers.add(overview) is False
    viewers.remove(overview)
    assert viewers.all_queues
    viewers.remove(overview)
    assert not viewers.all_queues
    assert viewers.add(overview) is True


def test_listed_queues_count_only_while_someone_views_every_queue() -> None:
    viewers = Viewers(["default"], max_queues=10)
    viewers.listed = [EMAIL, SMS]
    viewers.add(Interest(queues=(SMS,)))
    assert viewers.counted_queues() == [SMS]
    viewers.add(Interest(all_queues=True))
    assert viewers.counted_queues() == [SMS, EMAIL]  # viewed queues first


def test_watched_jobs_are_tailed_not_counted() -> None:
    viewers = Viewers(["default"], max_queues=10)
    viewers.add(Interest(jobs=(JOB,)))
    assert viewers.watches(JOB) and viewers.watched_jobs() == [JOB]
    assert viewers.counted_queues() == []
    assert viewers.tailed_queues() == [SMS]
    viewers.remove(Interest(jobs=(JOB,)))
    assert not viewers.watches(JOB) and viewers.tailed_queues() == []


def test_queues_of_unknown_connections_are_not_tailed() -> None:
    viewers = Viewers(["default"], max_queues=10)
    viewers.add(Interest(queues=(EMAIL, OTHER)))
    assert viewers.tailed_queues() == [EMAIL]


def test_at_most_max_queues_are_followed_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    viewers = Viewers(["default"], max_queues=1)
    viewers.add(Interest(queues=(EMAIL, SMS)))
    assert viewers.counted_queues() == [EMAIL]
    viewers.add(Interest(jobs=(JOB,)))
    with caplog.at_level(logging.WARNING, logger="queues.live.interest"):
        assert viewers.tailed_queues() == [SMS]  # the queues of watched jobs first
        assert viewers.tailed_queues() == [SMS]
    assert [record.getMessage() for record in caplog.records] == [
        "live updates follow 1 of 2 queues (BULLMQ_DASHBOARD['LIVE']['MAX_QUEUES'])"
    ]
