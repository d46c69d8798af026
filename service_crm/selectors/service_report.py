"""The service report the customer gets when a job is done: who came, when (the site's local
time), what was found and done, the checks, the parts fitted, the photos and the customer's
signature, as a PDF (fpdf2). Internal notes are not in it."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from service_crm.models import WorkOrder, WorkOrderPhoto
from service_crm.selectors.work_orders import work_order_record_get


def _latin1(text: str) -> str:
    # The PDF's core fonts are Latin-1: anything else prints as '?', never fails the report.
    return text.encode("latin-1", "replace").decode("latin-1")


def service_report_pdf(*, work_order: WorkOrder) -> bytes:
    """The report of a completed `work_order` (the caller has checked who may read it)."""
    from fpdf import FPDF

    wo = (WorkOrder.objects.select_related("ticket__asset__site__account",
                                           "ticket__asset__equipment_model", "engineer")
          .get(pk=work_order.pk))
    ticket, asset = wo.ticket, wo.ticket.asset
    site = asset.site
    tz = ZoneInfo(site.timezone)
    record = work_order_record_get(work_order=wo)

    def when(t: object) -> str:
        return t.astimezone(tz).strftime("%d %b %Y %H:%M %Z") if t else "-"  # type: ignore[attr-defined]

    pdf = FPDF(format="A4")
    pdf.set_title(f"Service report WO-{wo.pk:06d}")
    pdf.set_creator("Aftercare")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, _latin1(f"Service report WO-{wo.pk:06d}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=10)
    facts = [
        ("Customer", site.account.name), ("Site", ", ".join(
            p for p in (site.name, site.address, site.city) if p)),
        ("Machine", f"{asset.serial} ({asset.equipment_model.name})"),
        ("Ticket", f"{ticket.number}: {ticket.summary}"),
        ("Engineer", wo.engineer.name if wo.engineer else "-"),
        ("Arrived", when(wo.started_at)), ("Completed", when(wo.completed_at)),
        ("Time on site", record.time_on_site if wo.time_spent_min else "-"),
        ("Outcome", ticket.get_outcome_display() if ticket.outcome else "-"),
    ]
    for label, value in facts:
        pdf.set_font("Helvetica", "B", 10)
        pdf.cell(35, 6, _latin1(label))
        pdf.set_font("Helvetica", size=10)
        pdf.multi_cell(0, 6, _latin1(value), new_x="LMARGIN", new_y="NEXT")

    def heading(text: str) -> None:
        pdf.ln(3)
        pdf.set_font("Helvetica", "B", 12)
        pdf.cell(0, 8, text, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", size=10)

    heading("Work done")
    pdf.multi_cell(0, 6, _latin1(wo.completion_report or "-"), new_x="LMARGIN", new_y="NEXT")
    if wo.checklist:
        heading("Checks")
        for item in wo.checklist:
            if isinstance(item, dict):
                mark = "done" if item.get("done") else "NOT DONE"
                pdf.multi_cell(0, 6, _latin1(f"[{mark}] {item.get('task', '')}"),
                               new_x="LMARGIN", new_y="NEXT")
    heading("Parts fitted")
    for p in record.parts:
        pdf.multi_cell(0, 6, _latin1(f"{p.quantity} x {p.part.name} ({p.part.sku})"),
                       new_x="LMARGIN", new_y="NEXT")
    if not record.parts:
        pdf.cell(0, 6, "None", new_x="LMARGIN", new_y="NEXT")
    photos = list(WorkOrderPhoto.objects.filter(work_order=wo))
    if photos:
        heading(f"Photos ({len(photos)})")
        x, size = pdf.l_margin, 58.0
        for i, photo in enumerate(photos):
            if i and i % 3 == 0:
                pdf.ln(size + 2)
                x = pdf.l_margin
            if pdf.get_y() + size > pdf.h - pdf.b_margin:
                pdf.add_page()
            with photo.image.open("rb") as fh:
                pdf.image(fh, x=x, y=pdf.get_y(), w=size, h=size, keep_aspect_ratio=True)
            x += size + 3
        pdf.ln(size + 2)
    signature = getattr(wo, "signature", None)
    heading("Customer signature")
    if signature is not None:
        if pdf.get_y() + 40 > pdf.h - pdf.b_margin:
            pdf.add_page()
        with signature.image.open("rb") as fh:
            pdf.image(fh, x=pdf.l_margin, y=pdf.get_y(), w=70, h=30, keep_aspect_ratio=True)
        pdf.ln(32)
        pdf.cell(0, 6, _latin1(f"{signature.signed_by}, {when(signature.signed_at)}"),
                 new_x="LMARGIN", new_y="NEXT")
    else:
        pdf.cell(0, 6, "Not signed on site.", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
