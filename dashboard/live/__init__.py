"""Live updates: one events watcher per process, websocket groups, and the fragments pushed to pages.

`hub.LiveHub` owns the process's `queues.events.EventWatcher` (started by the first viewer, stopped
when the last leaves), renders what changed with the pages' own partials (`fragments`) and sends it
to Channels groups (`groups`) that the consumers in `dashboard.consumers` join.
"""
