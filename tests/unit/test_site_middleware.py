"""config.middleware: which hooks run on the event loop, and Django's deploy checks for them."""

from __future__ import annotations

from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.contrib import messages
from django.core.checks import run_checks
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory, override_settings

from config import middleware
from config.middleware_checks import check_inline_middleware


async def respond(request: HttpRequest) -> HttpResponse:
    return HttpResponse()


def test_session_is_saved_in_the_thread_only_when_modified() -> None:
    session = middleware.SessionMiddleware(respond)
    request = RequestFactory().get("/", HTTP_COOKIE=f"{settings.SESSION_COOKIE_NAME}=abc")
    session.process_request(request)
    assert not session.response_needs_thread(request, HttpResponse())
    request.session["seen"] = True
    assert session.response_needs_thread(request, HttpResponse())


def test_messages_are_stored_in_the_thread_only_when_some_were_added() -> None:
    session, store = middleware.SessionMiddleware(respond), middleware.MessageMiddleware(respond)
    request = RequestFactory().get("/")
    session.process_request(request)
    store.process_request(request)
    assert not store.response_needs_thread(request, HttpResponse())
    messages.info(request, "retried")
    assert store.response_needs_thread(request, HttpResponse())


def test_csrf_checks_run_on_the_loop_unless_the_token_lives_in_the_session() -> None:
    csrf = middleware.CsrfViewMiddleware(respond)
    request = RequestFactory().get("/")
    assert iscoroutinefunction(csrf.process_view)
    assert not csrf.request_needs_thread(request)
    with override_settings(CSRF_USE_SESSIONS=True):
        assert not iscoroutinefunction(csrf.process_view)
        assert csrf.request_needs_thread(request)


def deploy_check_ids() -> set[str]:
    """What `manage.py check --deploy` reports (it leaves out SILENCED_SYSTEM_CHECKS)."""
    found = run_checks(include_deployment_checks=True)
    return {message.id for message in found if message.id and not message.is_silenced()}


def test_deploy_checks_see_the_subclasses_as_the_django_middlewares() -> None:
    ids = deploy_check_ids()
    assert not ids & {"security.W001", "security.W002", "security.W003", "site.W001"}
    # Django skips these when it thinks SecurityMiddleware is absent; here they run.
    assert "security.W004" in ids and "security.W008" in ids


def test_a_missing_middleware_is_still_reported() -> None:
    without_security = [path for path in settings.MIDDLEWARE if not path.endswith(".SecurityMiddleware")]
    with override_settings(MIDDLEWARE=without_security):
        ids = deploy_check_ids()
    assert "site.W001" in ids and "security.W004" not in ids


def test_the_check_is_silent_for_django_own_classes() -> None:
    originals = [middleware.REPLACES.get(path, path) for path in settings.MIDDLEWARE]
    with override_settings(MIDDLEWARE=originals):
        assert check_inline_middleware() == []
