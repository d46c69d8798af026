"""Desk lists beyond one page: sorting by a column, the whole filtered list as CSV, and bulk
actions on the rows ticked (each row through its own service call, so each is checked and
audited as if done one by one)."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from service_crm.models.choices import TicketStatus
from service_crm.selectors import access
from service_crm.selectors.access import Role
from service_crm.services import tickets as ticket_services
from web.roles import role_required

DESK = (Role.ADMIN, Role.DESK_AGENT, Role.SERVICE_MANAGER)
BULK_MAX = 200

# ?sort= value -> (label, ORDER BY); a leading '-' in the value means newest/highest first.
TICKET_SORTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "due": ("Resolution due", ("resolution_due", "-opened_at", "pk")),
    "-due": ("Resolution due, latest first", ("-resolution_due", "-opened_at", "pk")),
    "opened": ("Opened, oldest first", ("opened_at", "pk")),
    "-opened": ("Opened, newest first", ("-opened_at", "-pk")),
    "priority": ("Priority", ("priority", "resolution_due", "pk")),
    "account": ("Account", ("account__name", "resolution_due", "pk")),
    "status": ("Status", ("status", "resolution_due", "pk")),
}
TICKET_SORT_CHOICES = [(k, v[0]) for k, v in TICKET_SORTS.items()]
# Targets a bulk move may ask for; the service still checks each ticket's own transition.
BULK_TARGETS = [(TicketStatus.TRIAGED, "Triaged"), (TicketStatus.CLOSED, "Closed")]


def csv_cell(value: object) -> str:
    """A value as a CSV cell a spreadsheet shows as text: one starting like a formula
    (= + - @, tab, CR) gets a leading apostrophe, so it is never run (CSV injection)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_response(*, filename: str, header: list[str],
                 rows: Iterable[Iterable[object]]) -> StreamingHttpResponse:
    """Stream rows as CSV (UTF-8 with a byte-order mark, so spreadsheets read umlauts)."""
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        yield "\ufeff" + writer.writerow(header)
        for row in rows:
            yield writer.writerow([csv_cell(v) for v in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def tickets_csv(qs: Any) -> StreamingHttpResponse:
    """The filtered, sorted ticket list, every row (not just the page)."""
    def rows() -> Iterator[list[object]]:
        for t in qs.select_related("account", "asset").iterator(chunk_size=2000):
            yield [t.number, t.account.name, t.asset.serial, t.summary, t.get_status_display(),
                   t.get_priority_display(), t.get_coverage_display(),
                   t.opened_at.isoformat(), t.resolution_due.isoformat()
                   if t.resolution_due else "", "yes" if t.resolution_breached else "no"]
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    return csv_response(filename=f"tickets-{stamp}.csv", header=[
        "ticket", "account", "asset", "summary", "status", "priority", "coverage",
        "opened_at_utc", "resolution_due_utc", "resolution_breached"], rows=rows())


@require_POST
@role_required(*DESK)
def ticket_bulk(request: HttpRequest) -> HttpResponse:
    """Move the ticked tickets to one status; each through ticket_transition (checked,
    audited), the refused ones named with the reason. Tickets outside the user's scope are
    not found, as one by one."""
    back = reverse("desk:tickets")
    query = request.POST.get("list_query", "")
    if query and all(c.isalnum() or c in "=&-_%" for c in query):
        back += "?" + query
    to = request.POST.get("to", "")
    if to not in {v for v, _ in BULK_TARGETS}:
        messages.error(request, "Choose what to do with the tickets ticked.")
        return HttpResponseRedirect(back)
    try:
        ids = sorted({int(v) for v in request.POST.getlist("ticket")})
    except ValueError:
        ids = []
    if not ids:
        messages.error(request, "Tick at least one ticket.")
        return HttpResponseRedirect(back)
    if len(ids) > BULK_MAX:
        messages.error(request, f"At most {BULK_MAX} tickets at a time.")
        return HttpResponseRedirect(back)
    found = list(access.ticket_list_for_user(user=request.user).filter(pk__in=ids)
                 .order_by("pk"))
    actor: Any = request.user
    done: list[str] = []
    refused: list[str] = []
    for ticket in found:
        try:
            ticket_services.ticket_transition(ticket=ticket, to=to, actor=actor)
            done.append(ticket.number)
        except ValidationError as exc:
            refused.append(f"{ticket.number} ({' '.join(exc.messages)})")
    missing = len(ids) - len(found)
    if done:
        messages.success(request, f"{len(done)} moved to {to}: {', '.join(done)}.")
    if refused or missing:
        messages.error(request, "Not moved: " + "; ".join(
            refused + ([f"{missing} not found"] if missing else [])) + ".")
    return HttpResponseRedirect(back)


def assets_csv(qs: Any) -> StreamingHttpResponse:
    """The asset list as searched (every row): serial, model, account, site, devices."""
    def rows() -> Iterator[list[object]]:
        for a in (qs.select_related("site__account", "equipment_model")
                  .prefetch_related("devices").iterator(chunk_size=2000)):
            yield [a.serial, a.equipment_model.name, a.site.account.name, a.site.name,
                   a.site.region, a.get_status_display(), a.install_date, a.warranty_end,
                   " ".join(d.device_key for d in a.devices.all())]
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    return csv_response(filename=f"assets-{stamp}.csv", header=[
        "serial", "model", "account", "site", "region", "status", "installed",
        "warranty_end", "devices"], rows=rows())
