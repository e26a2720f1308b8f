"""The dashboard's URLs; mount them anywhere, e.g. `path("queues/", include("dashboard.urls"))`.

Job ids never go into a path: they are data (`/`, `..`, `%`, `?`, `#` and any Unicode are valid ids),
and a browser resolves dot segments of a path before it sends it, so `jobs/../../actions/drain/`
would reach another endpoint. Every URL about one job carries its id in the query string, `?id=`,
percent-encoded by `dashboard.links` and read back exactly by `dashboard.views.base.job_id_param`.
"""

from django.urls import path

from dashboard import converters  # noqa: F401 - registers the queue key converter
from dashboard.views import (
    actions,
    alert_banners,
    api,
    audit,
    clean_estimate,
    deduplication,
    error_groups,
    flows,
    health_fixes,
    metrics,
    pages,
    queue_metrics,
    schedulers,
    search,
    workers,
)
from dashboard.views import lookup as job_lookup

app_name = "bullmq_dashboard"

urlpatterns = [
    path("", pages.overview, name="overview"),
    path("api/queues/", api.queue_list, name="api-queues"),
    path("api/queues/<str:connection>/<bullmq_queue:queue_key>/", api.queue_detail, name="api-queue"),
    path("api/queues/<str:connection>/<bullmq_queue:queue_key>/jobs/", api.job_list, name="api-jobs"),
    path("api/queues/<str:connection>/<bullmq_queue:queue_key>/job/", api.job_detail, name="api-job"),
    path(
        "api/queues/<str:connection>/<bullmq_queue:queue_key>/job/flow/", flows.flow_api, name="api-job-flow"
    ),
    path(
        "api/queues/<str:connection>/<bullmq_queue:queue_key>/search/", search.search_api, name="api-search"
    ),
    path(
        "api/queues/<str:connection>/<bullmq_queue:queue_key>/workers/",
        workers.api_queue_workers,
        name="api-workers",
    ),
    path(
        "api/queues/<str:connection>/<bullmq_queue:queue_key>/schedulers/",
        schedulers.api_queue_schedulers,
        name="api-schedulers",
    ),
    path(
        "api/queues/<str:connection>/<bullmq_queue:queue_key>/metrics/",
        queue_metrics.api_queue_metrics,
        name="api-queue-metrics",
    ),
    path(
        "api/queues/<str:connection>/<bullmq_queue:queue_key>/health/",
        api.queue_health,
        name="api-queue-health",
    ),
    path(
        "api/queues/<str:connection>/<bullmq_queue:queue_key>/errors/",
        error_groups.api_queue_errors,
        name="api-errors",
    ),
    path(
        "api/queues/<str:connection>/<bullmq_queue:queue_key>/clean-estimate/",
        clean_estimate.clean_estimate,
        name="api-clean-estimate",
    ),
    path(
        "api/queues/<str:connection>/<bullmq_queue:queue_key>/deduplication/",
        deduplication.dedup_lookup_api,
        name="api-dedup-lookup",
    ),
    path("api/lookup/", job_lookup.lookup_api, name="api-lookup"),
    path("metrics", metrics.metrics, name="metrics"),
    path("lookup/", job_lookup.lookup_page, name="lookup"),
    path("audit/", audit.audit_log, name="audit"),
    path("errors/", error_groups.all_errors, name="errors"),
    path("workers/", workers.all_workers, name="workers"),
    path("alerts/", alert_banners.overview_alerts, name="alerts"),
    path("operations/<str:operation_id>/", actions.operation_status, name="operation"),
    path("<str:connection>/<bullmq_queue:queue_key>/", pages.queue_page, name="queue"),
    path("<str:connection>/<bullmq_queue:queue_key>/find/", pages.find_job, name="find-job"),
    path("<str:connection>/<bullmq_queue:queue_key>/errors/", error_groups.queue_errors, name="queue-errors"),
    path(
        "<str:connection>/<bullmq_queue:queue_key>/errors/actions/<str:action>/",
        error_groups.error_group_action,
        name="error-group-action",
    ),
    path("<str:connection>/<bullmq_queue:queue_key>/search/", search.search_page, name="search"),
    path(
        "<str:connection>/<bullmq_queue:queue_key>/deduplication/",
        deduplication.dedup_lookup,
        name="dedup-lookup",
    ),
    path(
        "<str:connection>/<bullmq_queue:queue_key>/health/fix/",
        health_fixes.health_fix,
        name="health-fix",
    ),
    path("<str:connection>/<bullmq_queue:queue_key>/workers/", workers.queue_workers, name="queue-workers"),
    path(
        "<str:connection>/<bullmq_queue:queue_key>/alerts/", alert_banners.queue_alerts, name="queue-alerts"
    ),
    path(
        "<str:connection>/<bullmq_queue:queue_key>/schedulers/",
        schedulers.queue_schedulers,
        name="queue-schedulers",
    ),
    path(
        "<str:connection>/<bullmq_queue:queue_key>/metrics/",
        queue_metrics.queue_metrics,
        name="queue-metrics",
    ),
    path(
        "<str:connection>/<bullmq_queue:queue_key>/actions/<str:action>/",
        actions.queue_action,
        name="queue-action",
    ),
    path("<str:connection>/<bullmq_queue:queue_key>/bulk/", actions.bulk_action, name="bulk"),
    path("<str:connection>/<bullmq_queue:queue_key>/job/", pages.job_page, name="job"),
    path("<str:connection>/<bullmq_queue:queue_key>/job/logs/", pages.job_logs, name="job-logs"),
    path("<str:connection>/<bullmq_queue:queue_key>/job/raw/", pages.job_raw, name="job-raw"),
    path("<str:connection>/<bullmq_queue:queue_key>/job/flow/", flows.flow_page, name="job-flow"),
    path(
        "<str:connection>/<bullmq_queue:queue_key>/job/actions/<str:action>/",
        actions.job_action,
        name="job-action",
    ),
]
