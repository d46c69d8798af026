from __future__ import annotations

from django.urls import path

from web.portal import views

app_name = "portal"
urlpatterns = [
    path("", views.home, name="home"),
    path("tickets/report/", views.ticket_report, name="ticket-report"),
    path("tickets/<int:pk>/", views.ticket_detail, name="ticket"),
    path("assets/<int:pk>/", views.asset_detail, name="asset"),
    path("visits/<int:pk>/service-report.pdf", views.work_order_report,
         name="work-order-report"),
    path("offers/<int:pk>/", views.offer_detail, name="offer"),
    path("offers/<int:pk>/decide/", views.offer_decide, name="offer-decide"),
    path("contract-documents/<int:pk>/", views.contract_document, name="contract-document"),
    path("personal-data/", views.personal_data, name="personal-data"),
    path("personal-data/deletion/", views.personal_data_deletion,
         name="personal-data-deletion"),
    path("consent/withdraw/", views.consent_withdraw, name="consent-withdraw"),
]
