"""A Django project that embeds the dashboard the way another team's project would (see settings.py)."""
