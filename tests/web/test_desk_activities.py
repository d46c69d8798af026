"""Desk pages for activities, follow-up tasks and the pipeline (issue 16, item 5)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from service_crm import models as m
from tests.support.world import ServedWorld

pytestmark = pytest.mark.db


def test_desk_logs_a_call_with_a_follow_up_and_pages_the_timeline(
        world: ServedWorld, desk_agent: Any, browser_client: Any) -> None:
    account = world.north.account
    desk = browser_client(desk_agent)
    tomorrow = world.now.date() + dt.timedelta(days=1)
    resp = desk.post(f"/desk/accounts/{account.pk}/activities/", {
        "kind": "call", "summary": "Buyer asked for a retrofit", "body": "Line 2",
        "contact": world.north.buyer.pk, "follow_up_title": "Send the quote",
        "follow_up_assignee": desk_agent.pk, "follow_up_due": str(tomorrow)})
    assert resp.status_code == 302, resp.content.decode()[:2000]
    task = m.FollowUpTask.objects.get()
    assert (task.title, task.assignee_id, task.due) == ("Send the quote", desk_agent.pk, tomorrow)
    page = desk.get(f"/desk/accounts/{account.pk}/timeline/?kind=call").content.decode()
    assert "Buyer asked for a retrofit" in page
    assert "Send the quote" in page
    assert "Buyer asked" not in desk.get(
        f"/desk/accounts/{account.pk}/timeline/?kind=visit").content.decode()
    assert desk.get(f"/desk/accounts/{account.pk}/timeline/?kind=bogus").status_code == 400
    for i in range(60):
        m.Interaction.objects.create(account=account, kind="note", summary=f"n{i}",
                                     at=world.now - dt.timedelta(minutes=i))
    second = desk.get(f"/desk/accounts/{account.pk}/timeline/?page=2").content.decode()
    assert "Page 2 of" in second
    half = desk.post(f"/desk/accounts/{account.pk}/activities/", {
        "kind": "note", "summary": "x", "follow_up_title": "Only a title"})
    assert half.status_code == 400
    assert "A follow-up needs a title and a due date." in half.content.decode()


def test_other_accounts_contact_is_refused(world: ServedWorld, desk_agent: Any,
                                           browser_client: Any) -> None:
    resp = browser_client(desk_agent).post(
        f"/desk/accounts/{world.north.account.pk}/activities/",
        {"kind": "call", "summary": "x", "contact": world.south.buyer.pk})
    assert resp.status_code == 400
    assert not m.Interaction.objects.filter(kind="call", summary="x").exists()


def test_task_list_overdue_and_done(world: ServedWorld, desk_agent: Any, service_manager: Any,
                                   browser_client: Any) -> None:
    old = m.FollowUpTask.objects.create(account=world.north.account, title="Call back",
                                        assignee=desk_agent, due=world.now.date()
                                        - dt.timedelta(days=2), created_at=world.now)
    m.FollowUpTask.objects.create(account=world.north.account, title="Boss task",
                                  assignee=service_manager, due=world.now.date(),
                                  created_at=world.now)
    desk = browser_client(desk_agent)
    mine = desk.get("/desk/tasks/?state=overdue").content.decode()
    assert "Call back" in mine
    assert "Boss task" not in mine
    assert "Boss task" in desk.get("/desk/tasks/?scope=all").content.decode()
    assert desk.post(f"/desk/tasks/{old.pk}/done/").status_code == 302
    old.refresh_from_db()
    assert old.done_by_id == desk_agent.pk
    assert "Call back" in desk.get("/desk/tasks/?state=done").content.decode()


def test_pipeline_page_and_roles(world: ServedWorld, desk_agent: Any, customer_user: Any,
                                 field_engineer: Any, browser_client: Any) -> None:
    page = browser_client(desk_agent).get("/desk/pipeline/").content.decode()
    assert "Offer pipeline and forecast" in page
    assert world.north.offer.valid_until.strftime("%Y-%m") in page  # the sent offers
    for user in (customer_user, field_engineer):
        client = browser_client(user)
        for url in ("/desk/pipeline/", "/desk/tasks/",
                    f"/desk/accounts/{world.north.account.pk}/timeline/"):
            assert client.get(url).status_code == 403
        assert client.post(f"/desk/accounts/{world.north.account.pk}/activities/",
                           {"kind": "note", "summary": "x"}).status_code == 403


def test_account_page_links_the_whole_timeline(world: ServedWorld, desk_agent: Any,
                                               browser_client: Any) -> None:
    account = world.north.account
    page = browser_client(desk_agent).get(f"/desk/accounts/{account.pk}/").content.decode()
    assert f'href="/desk/accounts/{account.pk}/timeline/"' in page
