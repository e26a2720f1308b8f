"""The terminal monitor (`manage.py queues`): the overview's counts as a table, a live view of them,
and the common queue actions through the same actions layer, checks and audit log as the web."""
