"""Helpers for the web tests: a PDF to upload, a billable job in the served world
(``tests.support.world``), and real Chromium for the browser tests."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from service_crm import models as m
from service_crm.models.choices import Outcome
from service_crm.services.work_orders import (
    PartUsed,
    work_order_complete,
    work_order_schedule,
    work_order_start,
)
from tests.support.personas import PASSWORD
from tests.support.world import ServedWorld


def minimal_pdf() -> bytes:
    """A real one-page PDF (what the upload check parses), made by pypdf."""
    import io

    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


# --- real Chromium (browser tests) ---------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def browser_login(page: Any, base: str, username: str) -> None:
    """Log a persona in through the login form."""
    page.goto(f"{base}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")


def desk_page(browser: Any, base: str, errors: list[str], *, username: str = "desk",
              **context_options: Any) -> tuple[Any, Any]:
    """A new browser context (``context_options``: viewport, is_mobile, ...) and its page, the
    page's script errors collected in ``errors``, with ``username`` logged in through the form
    and on the desk's dashboard."""
    context = browser.new_context(**context_options)
    page = context.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    browser_login(page, base, username)
    page.wait_for_url(f"{base}/desk/")
    return context, page


def session_page(browser: Any, base: str, user: Any, errors: list[str] | None,
                 **context_options: Any) -> tuple[Any, Any]:
    """A new browser context (``context_options``) and its page, the page's script errors
    collected in ``errors`` (unless None), signed in as ``user`` by a session cookie (no login
    page)."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    context = browser.new_context(**context_options)
    context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value,
                          "url": base}])
    page = context.new_page()
    if errors is not None:
        page.on("pageerror", lambda e: errors.append(str(e)))
    return context, page


def billable_job(world: ServedWorld, *, minutes: int = 60) -> m.WorkOrder:
    """The north compressor's contract covers nothing, and its work order is done: scheduled
    one hour after the world's now, started, completed an hour later with one part and
    `minutes` of labour, so the part and the labour are billable charges."""
    m.MaintenanceContract.objects.filter(account=world.north.account).update(
        covers_parts=False, covers_labour=False)
    wo, now, hour = world.north.work_order, world.now, dt.timedelta(hours=1)
    work_order_schedule(work_order=wo, engineer=world.north.engineer, start=now + hour,
                        end=now + 3 * hour, actor=None, now=now)
    work_order_start(work_order=wo, actor=None, now=now + hour)
    work_order_complete(work_order=wo, actor=None, report="Bearing replaced",
                        time_spent_min=minutes, outcome=Outcome.FAULT_CONFIRMED,
                        now=now + 2 * hour, parts=[PartUsed(world.part, world.warehouse, 1)])
    return wo
