from __future__ import annotations

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from web.api import activities, data_quality, erp, opportunities, service_ops, views

router = DefaultRouter()
router.register("accounts", views.AccountViewSet, basename="account")
router.register("assets", views.AssetViewSet, basename="asset")
router.register("alerts", views.AlertViewSet, basename="alert")
router.register("episodes", views.EpisodeViewSet, basename="episode")
router.register("tickets", views.TicketViewSet, basename="ticket")
router.register("work-orders", views.WorkOrderViewSet, basename="workorder")
router.register("offers", views.OfferViewSet, basename="offer")
router.register("devices", views.DeviceViewSet, basename="device")
router.register("tokens", views.ApiTokenViewSet, basename="apitoken")
service_ops.register(router)  # planned visits, work-order charges, webhook log
erp.register(router)  # inbound prices and stock; the price list
activities.register(router)  # timeline activities, follow-up tasks
data_quality.register(router)  # master data to fix
opportunities.register(router)  # the sales pipeline: opportunities, quotes, forecast
router.register("equipment-models", views.EquipmentModelViewSet, basename="equipmentmodel")

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves its start-up script as a file: our CSP allows no inline script.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("token/", views.TokenView.as_view(), name="api-token"),
    path("", include(router.urls)),
]
