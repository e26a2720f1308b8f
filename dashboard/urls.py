"""The dashboard's URLs; mount them anywhere, e.g. `path("queues/", include("dashboard.urls"))`."""

from django.urls import path

from dashboard.views import actions, api, audit, pages

app_name = "dashboard"

# Queue keys are `<prefix>:<name>` (str: no slash); job ids go last as `path` since they may hold slashes.
urlpatterns = [
    path("", pages.overview, name="overview"),
    path("api/queues/", api.queue_list, name="api-queues"),
    path("api/queues/<str:connection>/<str:queue_key>/", api.queue_detail, name="api-queue"),
    path("api/queues/<str:connection>/<str:queue_key>/jobs/", api.job_list, name="api-jobs"),
    path(
        "api/queues/<str:connection>/<str:queue_key>/jobs/<path:job_id>",
        api.job_detail,
        name="api-job",
    ),
    path("audit/", audit.audit_log, name="audit"),
    path("operations/<str:operation_id>/", actions.operation_status, name="operation"),
    path("<str:connection>/<str:queue_key>/actions/<str:action>/", actions.queue_action, name="queue-action"),
    path("<str:connection>/<str:queue_key>/bulk/", actions.bulk_action, name="bulk"),
    path(
        "<str:connection>/<str:queue_key>/job-actions/<str:action>/<path:job_id>",
        actions.job_action,
        name="job-action",
    ),
    path("<str:connection>/<str:queue_key>/find/", pages.find_job, name="find-job"),
    path("<str:connection>/<str:queue_key>/", pages.queue_page, name="queue"),
    path("<str:connection>/<str:queue_key>/jobs/<path:job_id>", pages.job_page, name="job"),
    path("<str:connection>/<str:queue_key>/logs/<path:job_id>", pages.job_logs, name="job-logs"),
    path(
        "<str:connection>/<str:queue_key>/raw/<str:field>/<path:job_id>",
        pages.job_raw,
        name="job-raw",
    ),
]
