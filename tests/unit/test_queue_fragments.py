"""The key under which a job row is kept: every shown value, nothing else."""

from __future__ import annotations

from dataclasses import replace

from dashboard.queue_fragments import summary_key
from queues.models import JobSummary

JOB = JobSummary("7", "send", 1, 2, 3, 1, 3, 50, 0, 0, "")


def test_every_field_of_the_summary_changes_the_key() -> None:
    for name, value in {"name": "other", "finished_on": 4, "attempts_made": 2, "failed_reason": "x"}.items():
        assert summary_key(replace(JOB, **{name: value})) != summary_key(JOB)


def test_json_progress_is_keyed_and_equal_values_of_other_types_differ() -> None:
    progress = {"stage": "upload", "files": [1, 2]}
    assert summary_key(replace(JOB, progress=progress)) == summary_key(replace(JOB, progress=dict(progress)))
    assert summary_key(replace(JOB, progress=True)) != summary_key(replace(JOB, progress=1))
