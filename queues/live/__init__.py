"""Tailing BullMQ's `events` streams: one watcher per process re-reads what its viewers look at.

The watcher never works per viewer. Viewers declare an `Interest` (every queue, some queues, some
jobs); the watcher keeps reference counts, tails the `<prefix>:<name>:events` streams of the queues
involved with one blocking XREAD per connection (on a dedicated connection, re-issued every
`block_ms` so a changed set of streams is picked up), and re-reads what the events touched, each
queue or job at most once per `interval` (the first event at once, later ones at the end of the
interval): counts of the touched queues in one pipelined round trip per connection, and the detail
of watched jobs. Viewed queues are re-counted every `resync_interval` even without events, which
heals events trimmed from a stream (MAXLEN) or missed while Redis was away.

The parts, each in its own module:
- `watcher`: `EventWatcher`, the facade: start and stop, watch and unwatch, counts for page views.
- `interest`: `JobRef`, `Interest` and `Viewers`, the reference-counted interest of the viewers, from
  which follow the queues counted and the streams tailed.
- `streams`: `StreamTailer`, the per-connection XREAD loop, offsets, projected reads, bad streams.
- `pending`: `PendingWork`, what the readers and new viewers left for the next refresh.
- `refresh`: `Refresher`, the refresh loop (due queues and jobs, coalescing, resync) and `LiveUpdate`.
- `watched_jobs`: `WatchedJobs`, reads of watched jobs and the marks that tell their logs moved.
- `count_cache`: `CountCache`, the latest counts of each queue, for page views and change detection.
- `reachability`: `Reachability`, connections found down, and the errors that mean it.
- `backoff`: `Backoff`, delays between retries.
- `options`: `WatcherOptions`, the library's defaults of how often and how much to read.

`queues.events` is the import path other code uses; it names the public parts.
"""
