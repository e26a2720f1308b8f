"""The host project's URLs: its own pages, login and logout, and the dashboard at /ops/queues/."""

from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import TemplateView

urlpatterns = [
    path("", TemplateView.as_view(template_name="host/home.html"), name="host-home"),
    path("sign-in/", auth_views.LoginView.as_view(template_name="host/login.html"), name="host-login"),
    path("sign-out/", auth_views.LogoutView.as_view(), name="host-logout"),
    path("ops/queues/", include("dashboard.urls")),
]
