"""The dashboard's URLs; mount them anywhere, e.g. `path("queues/", include("dashboard.urls"))`.

Job ids never go into a path: they are data (`/`, `..`, `%`, `?`, `#` and any Unicode are valid ids),
and a browser resolves dot segments of a path before it sends it, so `jobs/../../actions/drain/`
would reach another endpoint. Every URL about one job carries its id in the query string, `?id=`,
percent-encoded by `dashboard.links` and read back exactly by `dashboard.views.base.job_id_param`.
"""

from django.urls import path

from dashboard import converters  # noqa: F401 - registers the queue key converter
from dashboard.views import actions, api, audit, pages

app_name = "bullmq_dashboard"

urlpatterns = [
    path("", pages.overview, name="overview"),
    path("api/queues/", api.queue_list, name="api-queues"),
    path("api/queues/<str:connection>/<bullmq_queue:queue_key>/", api.queue_detail, name="api-queue"),
    path("api/queues/<str:connection>/<bullmq_queue:queue_key>/jobs/", api.job_list, name="api-jobs"),
    path("api/queues/<str:connection>/<bullmq_queue:queue_key>/job/", api.job_detail, name="api-job"),
    path("audit/", audit.audit_log, name="audit"),
    path("operations/<str:operation_id>/", actions.operation_status, name="operation"),
    path("<str:connection>/<bullmq_queue:queue_key>/", pages.queue_page, name="queue"),
    path("<str:connection>/<bullmq_queue:queue_key>/find/", pages.find_job, name="find-job"),
    path(
        "<str:connection>/<bullmq_queue:queue_key>/actions/<str:action>/",
        actions.queue_action,
        name="queue-action",
    ),
    path("<str:connection>/<bullmq_queue:queue_key>/bulk/", actions.bulk_action, name="bulk"),
    path("<str:connection>/<bullmq_queue:queue_key>/job/", pages.job_page, name="job"),
    path("<str:connection>/<bullmq_queue:queue_key>/job/logs/", pages.job_logs, name="job-logs"),
    path("<str:connection>/<bullmq_queue:queue_key>/job/raw/", pages.job_raw, name="job-raw"),
    path(
        "<str:connection>/<bullmq_queue:queue_key>/job/actions/<str:action>/",
        actions.job_action,
        name="job-action",
    ),
]
