"""Realistic BullMQ traffic for the demo: producers, workers, job schedulers and flows.

Every write goes through the PyPI `bullmq` package, so Redis holds exactly what a real deployment's
producers and workers would leave there: retries with exponential backoff, stack traces, delayed and
prioritized jobs, a paused queue, job schedulers, a flow, logs, progress and return values.

Run it alone with `python -m demo.traffic --redis-url redis://127.0.0.1:6380/0`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import random
import signal
import smtplib
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from bullmq import FlowProducer, Queue, Worker
from bullmq.custom_errors import UnrecoverableError
from redis.exceptions import RedisError

logger = logging.getLogger("demo.traffic")

PREFIX = "bull"
BILLING_PREFIX = "{tenant-a}"

#: (prefix, queue name) of every queue the demo writes; `python -m demo` trusts only these keys.
DEMO_QUEUES: tuple[tuple[str, str], ...] = (
    (PREFIX, "email"),
    (PREFIX, "notifications"),
    (PREFIX, "document-processing"),
    (PREFIX, "analytics"),
    (PREFIX, "webhooks"),
    (PREFIX, "reports"),
    (BILLING_PREFIX, "billing"),
)

UNFINISHED = ("waiting", "active", "delayed", "prioritized")

# Node's MetricsTime.ONE_WEEK: one data point per minute, kept for a week.
METRICS = {"maxDataPoints": 10080}

Processor = Callable[[Any, str], Awaitable[Any]]


def _backoff(delay_ms: int) -> dict[str, Any]:
    """Exponential backoff options starting at delay_ms."""
    return {"type": "exponential", "delay": delay_ms}


# Retention mirrors the seeds (keep ~1000 completed, failed for a week) so a demo left running for
# a day does not grow Redis without bound.
DEFAULT_JOB_OPTIONS: dict[str, dict[str, Any]] = {
    "email": {
        "attempts": 3,
        "backoff": _backoff(1000),
        "removeOnComplete": {"age": 86400, "count": 2000},
        "removeOnFail": {"age": 604800, "count": 5000},
    },
    "notifications": {
        "attempts": 5,
        "backoff": _backoff(2000),
        "removeOnComplete": {"count": 1000},
        "removeOnFail": {"count": 2000},
    },
    "document-processing": {
        "attempts": 2,
        "backoff": _backoff(2000),
        "removeOnComplete": {"count": 500},
        "removeOnFail": {"count": 1000},
    },
    "analytics": {
        "attempts": 1,
        "removeOnComplete": {"count": 1000},
        "removeOnFail": {"count": 1000},
    },
    "webhooks": {
        "attempts": 5,
        "backoff": _backoff(2000),
        "removeOnComplete": {"count": 1000},
        "removeOnFail": {"count": 5000},
    },
    "reports": {
        "attempts": 2,
        "backoff": _backoff(5000),
        "removeOnComplete": {"count": 200},
        "removeOnFail": {"count": 500},
    },
    "billing": {
        "attempts": 3,
        "backoff": _backoff(1000),
        "removeOnComplete": {"count": 1000},
        "removeOnFail": {"count": 5000},
    },
}

# --------------------------------------------------------------------------------------------------
# Fake but plausible data
# --------------------------------------------------------------------------------------------------

FIRST_NAMES = (
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
    "ivan", "judy", "mallory", "niaj", "olivia", "peggy", "rupert", "sybil",
    "trent", "victor", "walter", "zoe",
)  # fmt: skip
CUSTOMERS = ("ACME Corp", "Globex", "Initech", "Umbrella Health", "Stark Logistics", "Wayne Retail")
DOC_KINDS = ("invoice", "contract", "10-K filing", "insurance claim", "purchase order", "resume")
EVENTS = ("signup_completed", "checkout_started", "checkout_completed", "feature_used", "search")
WEBHOOK_EVENTS = ("invoice.paid", "customer.created", "document.processed", "user.deleted")
PAGES = ("/", "/pricing", "/docs/getting-started", "/blog/queues-at-scale", "/app/settings")
LOREM = (
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt "
    "ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco "
    "laboris nisi ut aliquip ex ea commodo consequat. Duis aute irure dolor in reprehenderit in "
    "voluptate velit esse cillum dolore eu fugiat nulla pariatur. "
)


def _user() -> dict[str, Any]:
    """A user id with a matching example.com address."""
    number = random.randint(1000, 99999)
    return {
        "userId": f"usr_{number:05d}",
        "email": f"{random.choice(FIRST_NAMES)}.{number}@example.com",
    }


def _document() -> dict[str, Any]:
    """A stored upload as a document pipeline would receive it."""
    doc_id = f"doc_{uuid.uuid4().hex[:12]}"
    kind = random.choice(DOC_KINDS)
    return {
        "documentId": doc_id,
        "fileName": f"{kind.replace(' ', '-')}-{random.randint(1, 9999):04d}.pdf",
        "url": f"https://files.example.com/uploads/{time.strftime('%Y/%m')}/{doc_id}.pdf",
        "sizeBytes": random.randint(40_000, 12_000_000),
        "mimeType": "application/pdf",
        "customer": random.choice(CUSTOMERS),
        "pages": random.randint(1, 40),
        "tags": random.sample(["financial", "legal", "hr", "Q4-2024", "urgent", "archive"], 2),
    }


def _account() -> str:
    """A billing account id of tenant A."""
    return f"acct_{random.randint(1, 400):04d}"


def _stamp() -> str:
    """A log-line timestamp."""
    return time.strftime("%Y-%m-%dT%H:%M:%S")


# --------------------------------------------------------------------------------------------------
# Processors. Failures are raised a few calls deep, as real client libraries do, so the stored stack
# traces have depth.
# --------------------------------------------------------------------------------------------------

EMAIL_TEMPLATES = {
    "send-welcome": "welcome-v3",
    "send-receipt": "receipt-v7",
    "password-reset": "password-reset-v2",
}


class _SmtpSession:
    """A pretend SMTP session against smtp.example.com that fails the way real relays do."""

    def __init__(self, host: str) -> None:
        self.host = host

    def send(self, message: str, recipient: str) -> dict[str, Any]:
        """Deliver one message, raising smtplib's own errors on refusal or disconnect."""
        self._check_recipient(recipient)
        self._transmit(message)
        queue_id = uuid.uuid4().hex[:10].upper()
        return {
            "messageId": f"<{uuid.uuid4().hex}@mail.example.com>",
            "accepted": [recipient],
            "smtpResponse": f"250 2.0.0 Ok: queued as {queue_id}",
        }

    def _check_recipient(self, recipient: str) -> None:
        if recipient.endswith("@bounce.example.com"):
            reason = f"5.1.1 <{recipient}>: Recipient address rejected: User unknown".encode()
            raise smtplib.SMTPRecipientsRefused({recipient: (550, reason)})

    def _transmit(self, message: str) -> None:
        roll = random.random()
        if roll < 0.07:
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        if roll < 0.10:
            raise smtplib.SMTPDataError(421, b"4.7.0 Try again later, closing connection.")


def _deliver_email(template: str, data: dict[str, Any]) -> dict[str, Any]:
    """Render and hand a message to the relay."""
    message = f"To: {data['to']}\nTemplate: {template}\n\n{data.get('locale', 'en')}"
    return _SmtpSession("smtp.example.com").send(message, data["to"])


async def process_email(job: Any, token: str) -> Any:
    """Send one transactional email."""
    template = EMAIL_TEMPLATES.get(job.name, "generic-v1")
    await job.log(f"{_stamp()} rendering template {template} for {job.data['to']}")
    await asyncio.sleep(random.uniform(0.1, 0.6))
    receipt = _deliver_email(template, job.data)
    await job.log(f"{_stamp()} accepted by smtp.example.com: {receipt['smtpResponse']}")
    return receipt


class ProviderError(Exception):
    """A push or SMS provider answered with an error."""


class DeviceNotRegistered(UnrecoverableError):  # type: ignore[misc]
    """The push token is gone for good; retrying cannot help."""


def _call_provider(channel: str, data: dict[str, Any]) -> dict[str, Any]:
    """Pretend to call APNs/FCM or the SMS gateway."""
    roll = random.random()
    if channel == "sms" and roll < 0.08:
        raise ProviderError(f"HTTP 429 Too Many Requests: rate limit exceeded for {data['phone']}")
    if channel == "push" and roll < 0.03:
        raise DeviceNotRegistered("410 Gone: device token is no longer registered")
    provider = "twilio" if channel == "sms" else random.choice(("apns", "fcm"))
    return {"delivered": True, "provider": provider, "providerMessageId": uuid.uuid4().hex}


async def process_notification(job: Any, token: str) -> Any:
    """Deliver a push notification or an SMS."""
    channel = "sms" if job.name == "send-sms" else "push"
    await asyncio.sleep(random.uniform(0.8, 2.0))
    return _call_provider(channel, job.data)


DOCUMENT_STEPS = {
    "pdf-extract": ("download", "parse xref table", "extract text", "extract tables", "store"),
    "ocr": ("download", "rasterize", "deskew", "recognize", "store"),
    "embed": ("load chunks", "tokenize", "call embedding model", "upsert vectors"),
    "render-section": ("query warehouse", "build charts", "render html", "print pdf"),
}


def _run_ocr_engine(page: int, pages: int, dpi: int) -> None:
    """Pretend to wait for the OCR engine on one page; 600 dpi scans never make it in time."""
    if dpi >= 600 or random.random() < 0.03:
        raise TimeoutError(f"OCR engine did not respond within 30 s (page {page} of {pages})")


def _call_embedding_model(chunks: int) -> None:
    """Pretend to call the embedding service."""
    if random.random() < 0.04:
        raise TimeoutError(f"embedding service timed out after 60 s ({chunks} chunks in flight)")


def _query_warehouse(section: str) -> None:
    """Pretend to run the report query for one section."""
    if random.random() < 0.04:
        raise TimeoutError(f"canceling statement due to statement timeout (section {section!r})")


async def process_document(job: Any, token: str) -> Any:
    """Run one document pipeline step with progress and log lines; takes 1-4 s."""
    steps = DOCUMENT_STEPS.get(job.name, ("process",))
    duration = random.uniform(1.0, 4.0)
    pages = int(job.data.get("pages", 1))
    for index, step in enumerate(steps, start=1):
        await job.log(f"{_stamp()} [{job.name}] {step}")
        await asyncio.sleep(duration / len(steps))
        if job.name == "ocr" and step == "recognize":
            _run_ocr_engine(random.randint(1, pages), pages, int(job.data.get("dpi", 300)))
        elif job.name == "embed" and step == "call embedding model":
            _call_embedding_model(len(job.data.get("chunks", ())) or random.randint(8, 120))
        elif job.name == "render-section" and step == "query warehouse":
            _query_warehouse(str(job.data.get("section")))
        percent = round(index * 100 / len(steps))
        if job.name == "ocr":
            # Node apps often report structured progress; keep one queue that does.
            await job.updateProgress({"page": max(1, pages * index // len(steps)), "of": pages})
        else:
            await job.updateProgress(percent)
    await job.log(f"{_stamp()} [{job.name}] done in {duration:.1f} s")
    result: dict[str, Any] = {"ms": int(duration * 1000)}
    if "documentId" in job.data:
        result["documentId"] = job.data["documentId"]
    if job.name == "pdf-extract":
        result.update(characters=random.randint(2_000, 400_000), tables=random.randint(0, 12))
    elif job.name == "ocr":
        result.update(confidence=round(random.uniform(0.82, 0.99), 3), pages=pages)
    elif job.name == "embed":
        result.update(vectors=random.randint(8, 600), model="text-embedding-3-small")
    else:
        result.update(section=job.data.get("section"), htmlBytes=random.randint(8_000, 90_000))
    return result


def _validate_event(data: dict[str, Any]) -> None:
    """Reject payloads that do not match the tracking plan."""
    event = data.get("event")
    if event is not None and event not in EVENTS:
        raise ValueError(f"unknown event type {event!r}: not in tracking plan v12")
    if "userId" not in data and "anonymousId" not in data:
        raise KeyError("userId")


async def process_analytics(job: Any, token: str) -> Any:
    """Store one analytics event (or a whole import batch)."""
    await asyncio.sleep(random.uniform(0.01, 0.08))
    if job.name == "import-batch":
        events = job.data.get("events", [])
        await job.log(f"{_stamp()} importing {len(events)} events from {job.data.get('source')}")
        return {"imported": len(events), "rejected": 0}
    _validate_event(job.data)
    return {
        "stored": True,
        "table": f"events_{time.strftime('%Y_%m')}",
        "partition": random.randint(0, 15),
        "latencyMs": random.randint(2, 40),
    }


class WebhookDeliveryError(Exception):
    """The subscriber's endpoint did not answer 2xx."""


def _post(url: str) -> int:
    """Pretend to POST to a subscriber."""
    if random.random() < 0.1:
        raise WebhookDeliveryError(f"POST {url} returned 502 Bad Gateway")
    return 200


async def process_webhook(job: Any, token: str) -> Any:
    """Deliver one outbound webhook."""
    await asyncio.sleep(random.uniform(0.2, 1.0))
    status = _post(str(job.data.get("url")))
    return {"status": status, "attempt": job.attemptsMade + 1}


async def process_report(job: Any, token: str) -> Any:
    """Build a scheduled report, or merge the sections rendered by a flow's children."""
    if job.name == "build-report":
        sections = await job.getChildrenValues()
        await job.log(f"{_stamp()} merging {len(sections)} rendered sections")
        await asyncio.sleep(random.uniform(0.5, 1.5))
        await job.updateProgress(100)
        return {
            "reportId": job.data.get("reportId"),
            "sections": len(sections),
            "url": f"https://reports.example.com/r/{job.data.get('reportId')}.pdf",
        }
    for percent in (20, 45, 70, 100):
        await asyncio.sleep(random.uniform(0.2, 0.5))
        await job.updateProgress(percent)
    await job.log(f"{_stamp()} {job.name}: mailed to {len(job.data.get('recipients', []))} people")
    return {"rows": random.randint(100, 50_000), "url": f"https://reports.example.com/r/{job.id}"}


class CardDeclinedError(UnrecoverableError):  # type: ignore[misc]
    """The card issuer declined the charge; retrying would charge nobody."""


def _charge(account: str, amount: int) -> str:
    """Pretend to charge the card on file."""
    roll = random.random()
    if roll < 0.05:
        raise CardDeclinedError(f"card_declined: insufficient_funds (account {account})")
    if roll < 0.08:
        raise ConnectionResetError("payment gateway reset the connection")
    return f"ch_{uuid.uuid4().hex[:24]}"


async def process_billing(job: Any, token: str) -> Any:
    """Generate invoices, charge cards and send dunning reminders for tenant A."""
    await asyncio.sleep(random.uniform(0.3, 1.2))
    data = job.data
    if job.name == "charge-card":
        charge = _charge(data["account"], data["amountDue"])
        return {"chargeId": charge, "amount": data["amountDue"], "currency": data["currency"]}
    if job.name == "generate-invoice":
        invoice = f"in_{uuid.uuid4().hex[:16]}"
        return {"invoiceId": invoice, "pdf": f"https://billing.example.com/{invoice}.pdf"}
    return {"sent": True, "to": data.get("email")}


# --------------------------------------------------------------------------------------------------
# Producers' job factories
# --------------------------------------------------------------------------------------------------


def email_job() -> dict[str, Any]:
    """One transactional email; a few go to an address that always bounces."""
    name = random.choices(tuple(EMAIL_TEMPLATES), weights=(40, 45, 15))[0]
    user = _user()
    to = user["email"]
    if random.random() < 0.05:
        to = to.replace("@example.com", "@bounce.example.com")
    data: dict[str, Any] = {
        "userId": user["userId"],
        "to": to,
        "locale": random.choice(("en", "de")),
    }
    if name == "send-receipt":
        data.update(orderId=f"ord_{random.randint(100000, 999999)}", amount=random.randint(5, 900))
    elif name == "password-reset":
        data.update(resetUrl=f"https://app.example.com/reset/{uuid.uuid4().hex}", ttlMinutes=30)
    return {"name": name, "data": data}


def notification_job(*, campaign: bool = False) -> dict[str, Any]:
    """One push or SMS; priority 1 is a login code, 10 is marketing."""
    user = _user()
    if campaign:
        data = {
            "userId": user["userId"],
            "deviceToken": uuid.uuid4().hex * 2,
            "title": "Spring sale: 20% off annual plans",
            "category": "marketing",
            "campaignId": "cmp_spring_sale",
        }
        return {"name": "send-push", "data": data, "opts": {"priority": random.randint(8, 10)}}
    if random.random() < 0.35:
        phone = f"+1555{random.randint(1000000, 9999999)}"
        data = {
            "userId": user["userId"],
            "phone": phone,
            "template": "login-code",
            "code": "******",
        }
        return {"name": "send-sms", "data": data, "opts": {"priority": random.randint(1, 2)}}
    category, priority = random.choice(
        (("security", 1), ("order-update", 3), ("mention", 5), ("digest", 7), ("marketing", 9))
    )
    data = {
        "userId": user["userId"],
        "deviceToken": uuid.uuid4().hex * 2,
        "title": f"New {category.replace('-', ' ')}",
        "category": category,
    }
    return {"name": "send-push", "data": data, "opts": {"priority": priority}}


def document_job(name: str | None = None) -> dict[str, Any]:
    """One step of the document pipeline; a few OCR jobs get scans too heavy to finish."""
    name = name or random.choices(("pdf-extract", "ocr", "embed"), weights=(45, 30, 25))[0]
    data = _document()
    data["requestedBy"] = _user()["userId"]
    if name == "ocr":
        data["dpi"] = 600 if random.random() < 0.1 else 300
    return {"name": name, "data": data}


def analytics_job() -> dict[str, Any]:
    """One tracking call; a few carry an event type outside the tracking plan."""
    user = _user()
    name = random.choices(("track-event", "page-view", "identify"), weights=(60, 30, 10))[0]
    data: dict[str, Any] = {"userId": user["userId"], "sentAt": int(time.time() * 1000)}
    if name == "track-event":
        data["event"] = random.choice(EVENTS) if random.random() > 0.03 else "checkout_complted"
        data["properties"] = {"plan": random.choice(("free", "team", "enterprise"))}
    elif name == "page-view":
        data.update(url=f"https://www.example.com{random.choice(PAGES)}", referrer=None)
    else:
        data.update(traits={"email": user["email"], "company": random.choice(CUSTOMERS)})
    if random.random() < 0.01:
        del data["userId"]
    return {"name": name, "data": data}


def webhook_job() -> dict[str, Any]:
    """One outbound webhook for a subscriber."""
    event = random.choice(WEBHOOK_EVENTS)
    data = {
        "subscriptionId": f"whsub_{random.randint(1, 60):03d}",
        "url": f"https://hooks.example.com/{random.choice(CUSTOMERS).split()[0].lower()}/events",
        "event": event,
        "payload": {
            "id": f"evt_{uuid.uuid4().hex[:20]}",
            "type": event,
            "created": int(time.time()),
        },
    }
    return {"name": "deliver-webhook", "data": data}


def billing_job(kind: str | None = None) -> dict[str, Any]:
    """An invoice, a charge, or a dunning reminder delayed by 5-30 minutes."""
    account = _account()
    period = time.strftime("%Y-%m")
    amount = random.choice((900, 2900, 4900, 9900, 24900))
    base = {"tenant": "tenant-a", "account": account, "amountDue": amount, "currency": "eur"}
    kinds = ("generate-invoice", "charge-card", "send-dunning-reminder")
    kind = kind or random.choices(kinds, weights=(4, 4, 2))[0]
    if kind == "generate-invoice":
        # Custom ids are idempotency keys in real billing code, colons and slashes included.
        opts = {"jobId": f"invoice:{account}:{period}/{random.randint(1, 99):02d}"}
        return {"name": kind, "data": {**base, "period": period}, "opts": opts}
    if kind == "charge-card":
        return {"name": kind, "data": {**base, "paymentMethod": f"pm_{uuid.uuid4().hex[:14]}"}}
    delay = random.randint(5, 30) * 60_000
    data = {**base, "email": _user()["email"], "reminder": random.randint(1, 3)}
    return {"name": kind, "data": data, "opts": {"delay": delay}}


def report_flow(*, delayed_appendix: bool = False) -> dict[str, Any]:
    """A `build-report` parent in `reports` with three `render-section` children."""
    report_id = f"rpt_{uuid.uuid4().hex[:10]}"
    sections = ["summary", "revenue", "appendix" if delayed_appendix else "churn"]
    children = []
    for section in sections:
        child_opts: dict[str, Any] = {
            **DEFAULT_JOB_OPTIONS["document-processing"],
            "failParentOnFailure": True,
        }
        if section == "appendix":
            # Waits for the month-end ledger close, so its parent sits in waiting-children.
            child_opts["delay"] = random.randint(10, 40) * 60_000
        children.append(
            {
                "name": "render-section",
                "queueName": "document-processing",
                "data": {"reportId": report_id, "section": section, "pages": 1},
                "opts": child_opts,
            }
        )
    customer = random.choice(CUSTOMERS)
    return {
        "name": "build-report",
        "queueName": "reports",
        "data": {"reportId": report_id, "customer": customer, "period": time.strftime("%Y-%m")},
        "opts": DEFAULT_JOB_OPTIONS["reports"],
        "children": children,
    }


def large_jobs() -> list[tuple[str, dict[str, Any]]]:
    """Two jobs with ~200 KB of data each, as (queue name, job)."""
    doc = _document()
    chunks = [{"index": i, "text": LOREM[: 300 + i % 100]} for i in range(570)]
    events = [
        {"event": random.choice(EVENTS), "userId": _user()["userId"], "ts": 1_700_000_000_000 + i}
        for i in range(3000)
    ]
    return [
        ("document-processing", {"name": "embed", "data": {**doc, "chunks": chunks}}),
        (
            "analytics",
            {"name": "import-batch", "data": {"source": "segment-replay", "events": events}},
        ),
    ]


def hostile_jobs() -> list[tuple[str, dict[str, Any]]]:
    """Jobs whose name, data and failure text try to inject markup, as (queue name, job)."""
    return [
        (
            "webhooks",
            {
                "name": "<img src=x onerror=alert(1)>",
                "data": {
                    "url": "https://hooks.example.com/<script>alert('url')</script>",
                    "payload": "<script>alert(document.cookie)</script>",
                    "note": "\"'><svg/onload=alert(2)>",
                },
            },
        ),
        (
            "analytics",
            {
                "name": "track-event",
                "data": {"userId": "usr_00666", "event": "<script>alert('failedReason')</script>"},
            },
        ),
        # A custom id made of path segments: its Retry button must retry this job, never reach
        # another URL (a browser resolves `..` in paths, which is why ids go in query strings).
        (
            "webhooks",
            {
                "name": "deliver-webhook",
                "data": {"url": "https://hooks.example.com/../../actions/drain/", "event": "path.trick"},
                "opts": {"jobId": "../../actions/drain/"},
            },
        ),
    ]


# --------------------------------------------------------------------------------------------------
# The running system
# --------------------------------------------------------------------------------------------------


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    """Sleep for seconds, waking early when stop is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def _ensure_reachable(redis_url: str) -> None:
    """Fail fast on a wrong URL: bullmq's own connections retry for minutes."""
    client = aioredis.Redis.from_url(redis_url, socket_connect_timeout=5)
    try:
        await client.ping()
    finally:
        await client.aclose()


class _Fleet:
    """Workers and the tasks running their loops, closed together."""

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self._running: list[tuple[Any, asyncio.Task[None]]] = []

    def start(
        self,
        queue: str,
        processor: Processor,
        *,
        name: str,
        concurrency: int,
        prefix: str = PREFIX,
    ) -> Any:
        """Start one named worker on queue."""
        worker = Worker(
            queue,
            processor,
            {
                "connection": self.redis_url,
                "prefix": prefix,
                "concurrency": concurrency,
                "name": name,
                "autorun": False,
                "metrics": METRICS,
            },
        )
        worker.on("error", lambda err, *_: logger.warning("worker %s: %r", name, err))
        # Own the run task (no autorun) so shutdown can await it instead of leaving it pending.
        task = asyncio.create_task(worker.run(), name=f"bullmq worker {name}")
        self._running.append((worker, task))
        return worker

    async def close(self, workers: list[Any] | None = None, grace: float = 15) -> None:
        """Close the given workers (all by default), letting in-flight jobs finish for `grace` s."""
        chosen = [(w, t) for w, t in self._running if workers is None or w in workers]
        self._running = [pair for pair in self._running if pair not in chosen]
        if not chosen:
            return
        closing = [asyncio.ensure_future(worker.close()) for worker, _ in chosen]
        _, late = await asyncio.wait(closing, timeout=grace)
        if late:
            # Only when Redis went away: bullmq's client retries for minutes, so cut jobs short.
            logger.warning("%d workers busy after %.0f s; cancelling jobs", len(late), grace)
            for worker, _ in chosen:
                worker.cancelProcessing()
            await asyncio.wait(late, timeout=5)
        await asyncio.wait([task for _, task in chosen], timeout=5)


class _Traffic:
    """The demo's queues, workers, schedulers and producers on one Redis."""

    def __init__(self, redis_url: str, stop: asyncio.Event) -> None:
        self.redis_url = redis_url
        self.stop = stop
        self.queues: dict[str, Any] = {}
        self.fleet = _Fleet(redis_url)
        self.flows: Any = None
        self.producers: list[asyncio.Task[None]] = []

    async def setup(self) -> None:
        """Create queues, pause webhooks, register job schedulers and start the workers."""
        for prefix, name in DEMO_QUEUES:
            self.queues[name] = Queue(
                name,
                {
                    "connection": self.redis_url,
                    "prefix": prefix,
                    "defaultJobOptions": DEFAULT_JOB_OPTIONS[name],
                },
            )
        self.flows = FlowProducer({"connection": self.redis_url})
        # Paused "for a provider migration": jobs pile up in waiting until someone resumes it.
        await self.queues["webhooks"].pause()
        reports = self.queues["reports"]
        recipients = ["cfo@example.com", "ops@example.com"]
        await reports.upsertJobScheduler(
            "nightly-report",
            {"every": 60_000},
            "nightly-report",
            {"report": "sales-summary", "format": "pdf", "recipients": recipients},
            DEFAULT_JOB_OPTIONS["reports"],
        )
        await reports.upsertJobScheduler(
            "hourly-digest",
            {"pattern": "0 * * * *", "tz": "Europe/Berlin"},
            "hourly-digest",
            {"report": "activity-digest", "format": "html", "recipients": recipients[1:]},
            DEFAULT_JOB_OPTIONS["reports"],
        )
        start = self.fleet.start
        start("email", process_email, name="mailer-1", concurrency=5)
        start("notifications", process_notification, name="notifier-1", concurrency=2)
        start("document-processing", process_document, name="doc-worker-1", concurrency=3)
        start("document-processing", process_document, name="ocr-gpu-1", concurrency=2)
        start("analytics", process_analytics, name="analytics-ingest-1", concurrency=5)
        start("webhooks", process_webhook, name="webhook-dispatcher-1", concurrency=4)
        start("reports", process_report, name="report-builder-1", concurrency=2)
        start("billing", process_billing, name="billing-1", concurrency=2, prefix=BILLING_PREFIX)

    async def add(self, queue: str, job: dict[str, Any]) -> None:
        """Add one job built by a factory."""
        await self.queues[queue].add(job["name"], job["data"], job.get("opts") or {})

    async def seed(self) -> None:
        """Add a backlog and work it off fast so the dashboard looks lived-in from the start."""
        started = time.monotonic()
        for queue, job in large_jobs() + hostile_jobs():
            await self.add(queue, job)
        await self.flows.add(report_flow(delayed_appendix=True))
        for _ in range(40):
            await self.add("webhooks", webhook_job())
        for kind in ("send-dunning-reminder",) * 5 + ("generate-invoice", "charge-card") * 4:
            await self.add("billing", billing_job(kind))
        for _ in range(3):
            heavy = document_job("ocr")
            heavy["data"]["dpi"] = 600
            await self.add("document-processing", heavy)
        campaign = [notification_job(campaign=True) for _ in range(60)]
        await self.queues["notifications"].addBulk(campaign)
        await self.queues["analytics"].addBulk([analytics_job() for _ in range(400)])
        await self.queues["email"].addBulk([email_job() for _ in range(150)])
        # Temporary wide workers: the regular ones (concurrency 2-5) would need minutes.
        start = self.fleet.start
        backfill = [
            start("analytics", process_analytics, name="analytics-backfill", concurrency=50),
            start("email", process_email, name="mailer-backfill", concurrency=50),
        ]
        await self._wait_until_drained(("analytics", "email"), within=30)
        await self.fleet.close(backfill)
        logger.info("seeded the demo queues in %.1f s", time.monotonic() - started)

    async def _wait_until_drained(self, names: tuple[str, ...], within: float) -> None:
        """Wait until the named queues have nothing left to do, for at most `within` seconds."""
        deadline = time.monotonic() + within
        while not self.stop.is_set() and time.monotonic() < deadline:
            pending = 0
            for name in names:
                counts = await self.queues[name].getJobCounts(*UNFINISHED)
                pending += sum(counts.values())
            if not pending:
                return
            await _pause(self.stop, 0.25)

    def _producer(
        self, label: str, period: tuple[float, float], action: Callable[[], Awaitable[None]]
    ) -> None:
        """Run action every period seconds (uniformly random) until stop."""

        async def loop() -> None:
            while not self.stop.is_set():
                try:
                    await action()
                except (RedisError, OSError) as exc:  # a producer must outlive one failed add
                    logger.warning("%s producer: %r", label, exc)
                await _pause(self.stop, random.uniform(*period))

        self.producers.append(asyncio.create_task(loop(), name=f"producer {label}"))

    async def _campaign(self) -> None:
        """A marketing blast, only while the prioritized backlog is small."""
        counts = await self.queues["notifications"].getJobCounts("prioritized")
        if counts["prioritized"] < 80:
            burst = [notification_job(campaign=True) for _ in range(50)]
            await self.queues["notifications"].addBulk(burst)

    async def _webhook(self) -> None:
        """An outbound webhook, capped so a paused queue left for days stays small."""
        if await self.queues["webhooks"].getWaitingCount() < 3000:
            await self.add("webhooks", webhook_job())

    async def _analytics(self) -> None:
        """One or two tracking calls."""
        jobs = [analytics_job() for _ in range(random.randint(1, 2))]
        await self.queues["analytics"].addBulk(jobs)

    def start_producers(self) -> None:
        """Start the producers: a few jobs per second in total, until stop."""
        add = self.add
        self._producer("email", (0.6, 1.6), lambda: add("email", email_job()))
        self._producer("notify", (0.7, 1.5), lambda: add("notifications", notification_job()))
        self._producer("campaign", (40, 70), self._campaign)
        self._producer("documents", (2.5, 5.0), lambda: add("document-processing", document_job()))
        self._producer("analytics", (0.5, 1.2), self._analytics)
        self._producer("webhooks", (2.0, 5.0), self._webhook)
        self._producer("billing", (3.0, 7.0), lambda: add("billing", billing_job()))
        self._producer("flows", (25, 45), self._flow)
        logger.info("traffic flowing on %s", self.redis_url)

    async def _flow(self) -> None:
        """A report flow; one in five waits on a delayed section."""
        await self.flows.add(report_flow(delayed_appendix=random.random() < 0.2))

    async def wait_for_stop(self) -> None:
        """Return once stop is set and every producer has finished its last add."""
        await self.stop.wait()
        if self.producers:
            await asyncio.wait(self.producers, timeout=5)

    async def close(self) -> None:
        """Stop producers, let workers finish their jobs, then close every connection."""
        for task in self.producers:
            task.cancel()
        await asyncio.gather(*self.producers, return_exceptions=True)
        await self.fleet.close()
        closers = [queue.close() for queue in self.queues.values()]
        if self.flows is not None:
            closers.append(self.flows.close())
        await asyncio.gather(*closers, return_exceptions=True)
        logger.info("traffic stopped")


async def run_traffic(redis_url: str, stop: asyncio.Event) -> None:
    """Keep realistic BullMQ traffic flowing on redis_url until stop is set, then close cleanly."""
    await _ensure_reachable(redis_url)
    traffic = _Traffic(redis_url, stop)
    try:
        await traffic.setup()
        # Producers first, so the counters move while the backlog is being worked off.
        traffic.start_producers()
        await traffic.seed()
        await traffic.wait_for_stop()
    finally:
        await traffic.close()


async def _run_until_signalled(redis_url: str) -> None:
    """Run the traffic until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await run_traffic(redis_url, stop)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m demo.traffic`."""
    parser = argparse.ArgumentParser(
        prog="python -m demo.traffic", description="Keep realistic BullMQ traffic flowing."
    )
    parser.add_argument("--redis-url", required=True, help="e.g. redis://127.0.0.1:6380/0")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        asyncio.run(_run_until_signalled(args.redis_url))
    except (RedisError, OSError) as exc:
        logger.error("cannot use %s: %s", args.redis_url, exc)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
