# The standalone dashboard: daphne on 0.0.0.0:8000, Redis from REDIS_URL.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=config.settings \
    DJANGO_STATIC_ROOT=/app/staticfiles \
    DATABASE_URL=sqlite:////data/db.sqlite3

WORKDIR /app
COPY pyproject.toml README.md ./
COPY queues ./queues
COPY dashboard ./dashboard
COPY config ./config
COPY demo ./demo
COPY static ./static
COPY templates ./templates
COPY manage.py ./
RUN pip install --no-cache-dir . \
    && DJANGO_SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput -v0 \
    && useradd --create-home --uid 10001 dashboard \
    && mkdir -p /data && chown dashboard /data

USER dashboard
VOLUME ["/data"]
EXPOSE 8000
# /healthz answers before Django (config/health.py): no database, no Redis, any Host header.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=3)"]
# Migrate the small auth/audit database on start, then serve HTTP and websockets with daphne
# (config/serve.py adds --proxy-headers when DJANGO_BEHIND_PROXY=1).
CMD ["sh", "-c", "python manage.py migrate --noinput && exec python -m config.serve --bind 0.0.0.0 --port 8000"]
