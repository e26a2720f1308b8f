"""Helpers shared across the test packages (and by bench/): builders of queue state, requests through the
project's ASGI application, live sockets, the site under test's URLs, Node scripts, subprocess sites and
Chromium."""
