from __future__ import annotations

from django.urls import path

from web.field import views

app_name = "field"
urlpatterns = [
    path("", views.today, name="today"),
    path("manifest.webmanifest", views.manifest, name="manifest"),
    path("sw.js", views.service_worker, name="service-worker"),
    path("work-orders/<int:pk>/", views.work_order, name="work-order"),
    path("work-orders/<int:pk>/start/", views.work_order_start, name="work-order-start"),
    path("work-orders/<int:pk>/progress/", views.work_order_progress,
         name="work-order-progress"),
    path("work-orders/<int:pk>/complete/", views.work_order_complete,
         name="work-order-complete"),
    path("work-orders/<int:pk>/photos/", views.work_order_photo, name="work-order-photo"),
    path("work-orders/<int:pk>/photos/<int:photo>/", views.work_order_photo_file,
         name="work-order-photo-file"),
    path("work-orders/<int:pk>/signature.png", views.work_order_signature_file,
         name="work-order-signature"),
    path("work-orders/<int:pk>/service-report.pdf", views.work_order_report,
         name="work-order-report"),
]
