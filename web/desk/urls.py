from __future__ import annotations

from django.urls import path

from web.desk import activities, lists, master_data, operations, opportunities, views

app_name = "desk"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("panel/", views.dashboard_panel, name="dashboard-panel"),
    path("episodes/", views.episode_list, name="episodes"),
    path("episodes/<int:pk>/", views.episode_detail, name="episode"),
    path("episodes/<int:pk>/offer/", views.episode_offer_create, name="episode-offer"),
    path("episodes/<int:pk>/classify/", views.episode_classify, name="episode-classify"),
    path("episodes/<int:pk>/not-a-fault/", views.episode_not_a_fault,
         name="episode-not-a-fault"),
    path("alerts/", views.alert_list, name="alerts"),
    path("search/", views.search, name="search"),
    path("tickets/", views.ticket_list, name="tickets"),
    path("tickets/bulk/", lists.ticket_bulk, name="tickets-bulk"),
    path("tickets/<int:pk>/", views.ticket_detail, name="ticket"),
    path("tickets/<int:pk>/transition/", views.ticket_transition, name="ticket-transition"),
    path("tickets/<int:pk>/pause/", views.ticket_pause, name="ticket-pause"),
    path("tickets/<int:pk>/resume/", views.ticket_resume, name="ticket-resume"),
    path("work-orders/<int:pk>/", views.work_order_detail, name="work-order"),
    path("work-orders/<int:pk>/schedule/", views.work_order_schedule, name="work-order-schedule"),
    path("accounts/", views.account_list, name="accounts"),
    path("accounts/<int:pk>/", views.account_detail, name="account"),
    path("contracts/<int:pk>/renewal-offer/", views.contract_renewal_offer,
         name="contract-renewal-offer"),
    path("contracts/<int:pk>/documents/", views.contract_document_add,
         name="contract-document-add"),
    path("contacts/<int:pk>/erase/", views.contact_erase, name="contact-erase"),
    path("assets/", views.asset_list, name="assets"),
    path("assets/<int:pk>/", views.asset_detail, name="asset"),
    path("offers/", views.offer_list, name="offers"),
    path("offers/<int:pk>/", views.offer_detail, name="offer"),
    path("offers/<int:pk>/<slug:verb>/", views.offer_action, name="offer-action"),
    path("dispatch/", views.dispatch_board, name="dispatch"),
    path("renewals/", views.renewals, name="renewals"),
    path("reports/", views.reports, name="reports"),
    path("devices/unclaimed/", views.devices_unclaimed, name="devices-unclaimed"),
    path("devices/<str:device_key>/claim/", views.device_claim, name="device-claim"),
    path("devices/<str:device_key>/release/", views.device_release, name="device-release"),
    *operations.url_patterns(),  # planned visits, charges, invoices, orders, webhook log
    *master_data.url_patterns(),  # likely duplicates, merge, CSV import
    *activities.url_patterns(),  # timeline and activities, follow-up tasks, pipeline
    *opportunities.url_patterns(),  # opportunities, quotes, forecast, starting one
]
