"""A job's stack traces grouped: the same trace of several attempts is shown once, with its attempts."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TraceGroup:
    """One distinct stack trace, the attempts that ended with it (newest first; numbers are None when
    they cannot be told) and how many times it is stored."""

    trace: str
    attempts: tuple[int | None, ...]

    @property
    def count(self) -> int:
        """How many stored traces are this one."""
        return len(self.attempts)

    @property
    def numbered(self) -> list[int]:
        """The attempt numbers known, oldest first."""
        return sorted(number for number in self.attempts if number is not None)


def trace_attempts(count: int, attempts_made: int, state: str) -> list[int | None]:
    """The attempt number of each stored trace, newest first.

    BullMQ appends one trace per failed attempt (and drops the oldest past `stackTraceLimit`): the
    newest is the last attempt made, or the one before it when the job then completed. Numbers that
    would fall below 1 (traces written by something else) are None.
    """
    newest = attempts_made - 1 if state == "completed" else attempts_made
    if newest - (count - 1) < 1:
        return [None] * count
    return [newest - index for index in range(count)]


def group_traces(traces: list[str], attempts_made: int, state: str) -> list[TraceGroup]:
    """Distinct traces (newest first, by their newest attempt) with the attempts of each."""
    numbers = trace_attempts(len(traces), attempts_made, state)
    order: list[str] = []
    attempts: dict[str, list[int | None]] = {}
    for trace, number in zip(traces, numbers, strict=True):
        if trace not in attempts:
            order.append(trace)
            attempts[trace] = []
        attempts[trace].append(number)
    return [TraceGroup(trace, tuple(attempts[trace])) for trace in order]
