from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from web import views
from web.login import LoginView, LogoutView

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("login/", LoginView.as_view(), name="login"),
    path("logout/", LogoutView.as_view(), name="logout"),
    # The admin's own login form has no rate limit: send it through ours.
    path("admin/login/", views.admin_login, name="admin-login"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("web.api.urls")),
    path("desk/", include("web.desk.urls")),
    path("field/", include("web.field.urls")),
    path("portal/", include("web.portal.urls")),
]
