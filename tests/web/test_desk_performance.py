"""Desk pages that must stay cheap on a big book: the dashboard's counts are shared between
users of the same scope (and only them), the account page pages its assets."""

from __future__ import annotations

from typing import Any

from service_crm import models as m
from service_crm.selectors.dashboard import dashboard_counts_get, dashboard_get
from tests import factories as f
from tests.support.world import ServedWorld


def _more_assets(world: ServedWorld, n: int) -> None:
    site = world.north.asset.site
    for i in range(n):
        f.AssetFactory(site=site, equipment_model=world.north.asset.equipment_model,
                       device=f"extra-{i:03d}")


def test_dashboard_counts_are_cached_for_desk_users(world: ServedWorld, desk_agent: Any) -> None:
    before = dashboard_get(user=f.fresh(desk_agent), now=world.now)
    _more_assets(world, 3)
    # Within the cache's lifetime another desk user gets the same (now stale) figures ...
    assert dashboard_get(user=f.fresh(desk_agent), now=world.now).assets_total == \
        before.assets_total
    from django.core.cache import cache
    cache.clear()
    # ... and the fresh figures once it has expired.
    assert dashboard_get(user=f.fresh(desk_agent), now=world.now).assets_total == \
        before.assets_total + 3


def test_dashboard_cache_never_crosses_scopes(world: ServedWorld, desk_agent: Any,
                                              field_engineer: Any, other_region_engineer: Any,
                                              customer_user: Any,
                                              other_customer_user: Any) -> None:
    _more_assets(world, 4)
    f.store_device("stray-1", state="offline")  # unclaimed: only staff count it
    desk = dashboard_counts_get(user=f.fresh(desk_agent))  # warms the cache first
    assert desk["assets_total"] == m.Asset.objects.count() == 8
    assert desk["devices"]["unclaimed"] >= 1
    north = m.Asset.objects.filter(site__account=world.north.account).count()
    south = m.Asset.objects.filter(site__account=world.south.account).count()
    assert (north, south) == (6, 2)
    for user, expected in ((field_engineer, north), (customer_user, north),
                           (other_region_engineer, south), (other_customer_user, south)):
        # Twice: the second answer comes from the cache and must still be the user's scope.
        for _ in range(2):
            got = dashboard_counts_get(user=f.fresh(user))
            assert got["assets_total"] == expected, user
            assert got["devices"]["unclaimed"] == 0, user
            assert sum(got["devices"].values()) <= expected * 2, user


def test_dashboard_cache_can_be_turned_off(world: ServedWorld,
        desk_agent: Any, settings: Any) -> None:
    settings.AFTERCARE_DASHBOARD_CACHE_S = 0
    before = dashboard_counts_get(user=f.fresh(desk_agent))["assets_total"]
    _more_assets(world, 2)
    assert dashboard_counts_get(user=f.fresh(desk_agent))["assets_total"] == before + 2


def test_account_page_pages_its_assets(world: ServedWorld, desk_agent: Any,
                                       browser_client: Any) -> None:
    _more_assets(world, 60)  # 62 on the north account: two pages of 50
    client = browser_client(desk_agent)
    url = f"/desk/accounts/{world.north.account.pk}/"
    first = client.get(url).content.decode()
    second = client.get(url, {"page": 2}).content.decode()
    serials = sorted(m.Asset.objects.filter(site__account=world.north.account)
                     .values_list("serial", flat=True))
    assert len(serials) == 62
    on_first = [s for s in serials if f">{s}</a>" in first]
    on_second = [s for s in serials if f">{s}</a>" in second]
    assert len(on_first) == 50
    assert len(on_second) == 12
    assert set(on_first).isdisjoint(on_second)
    assert 'data-testid="asset-count">(62)' in first
    assert "Page 1 of 2" in first
    assert "page=2" in first
    # Out-of-range or junk page numbers fall back to a real page rather than failing.
    assert client.get(url, {"page": "x"}).status_code == 200
    assert client.get(url, {"page": 99}).status_code == 200
