"""Claiming and releasing devices: who may, what is refused, what is recorded, and two desk
agents claiming the same device at once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import connection

from service_crm import models as m
from service_crm.models.choices import AssetStatus
from service_crm.services.devices import device_claim, device_release
from tests import factories as f
from tests.factories import store_device
from tests.support.crm import race
from tests.support.personas import user_with_role
from tests.support.world import NOW, World
from web.roles import Role

pytestmark = [pytest.mark.db, pytest.mark.django_db]
STRAY = "stray-0042"


@pytest.fixture
def agent(world: World) -> Any:
    """Dora, a desk agent (a second one, Dirk, races her below)."""
    return user_with_role("dora", Role.DESK_AGENT)


@pytest.fixture
def spare_asset(world: World) -> m.Asset:
    """A second compressor on the Hamburg site, installed without its controller claimed."""
    return f.AssetFactory(site=world.site, equipment_model=world.asset.equipment_model)


@pytest.fixture
def stray(world: World) -> str:
    store_device(STRAY)
    return STRAY


def _field_errors(err: pytest.ExceptionInfo[ValidationError]) -> dict[str, list[str]]:
    return err.value.message_dict


def test_desk_agent_claims_unclaimed_device(stray: str, spare_asset: m.Asset, agent: Any,
                                            world: World) -> None:
    asset = device_claim(device_key=stray, asset=spare_asset, actor=agent, now=NOW)
    assert asset == spare_asset
    assert list(asset.devices.values_list("device_key", flat=True)) == [stray]
    audit = m.AuditLog.objects.get(action="device.claim")
    assert audit.actor_label == "dora"
    assert audit.before is None
    assert audit.after is not None
    assert audit.after["device_key"] == stray
    note = m.Interaction.objects.get(account=world.account, asset=spare_asset)
    assert note.summary == f"Device {stray} attached to {spare_asset.serial}"
    assert note.by_id == agent.pk


def test_rejects_device_unknown_to_the_store(spare_asset: m.Asset, agent: Any) -> None:
    with pytest.raises(ValidationError) as err:
        device_claim(device_key="never-seen-1", asset=spare_asset, actor=agent, now=NOW)
    assert "has been seen" in _field_errors(err)["device_key"][0]
    assert not m.DeviceLink.objects.filter(device_key="never-seen-1").exists()


def test_rejects_malformed_device_key(spare_asset: m.Asset, agent: Any) -> None:
    with pytest.raises(ValidationError) as err:
        device_claim(device_key="bad key/1", asset=spare_asset, actor=agent, now=NOW)
    assert "device_key" in _field_errors(err)


def test_rejects_device_attached_to_another_asset(world: World, spare_asset: m.Asset,
                                                  agent: Any) -> None:
    store_device("cmp-n1")  # claimed by world.asset in the fixture
    with pytest.raises(ValidationError) as err:
        device_claim(device_key="cmp-n1", asset=spare_asset, actor=agent, now=NOW)
    assert _field_errors(err)["device_key"] == [
        f"cmp-n1 is already attached to {world.asset.serial}."]
    assert m.DeviceLink.objects.get(device_key="cmp-n1").asset_id == world.asset.pk
    assert not m.AuditLog.objects.filter(action="device.claim").exists()


def test_claiming_again_for_the_same_asset_changes_nothing(stray: str, spare_asset: m.Asset,
                                                           agent: Any) -> None:
    device_claim(device_key=stray, asset=spare_asset, actor=agent, now=NOW)
    device_claim(device_key=stray, asset=spare_asset, actor=agent, now=NOW)
    assert m.DeviceLink.objects.filter(device_key=stray).count() == 1
    assert m.AuditLog.objects.filter(action="device.claim").count() == 1


@pytest.mark.parametrize("who", ["no_role", "engineer", "sales"])
def test_rejects_actor_without_desk_role(stray: str, spare_asset: m.Asset, world: World,
                                         who: str) -> None:
    user = f.UserFactory(username=who)
    if who == "engineer":
        m.Engineer.objects.filter(pk=world.engineer.pk).update(user=user)
    if who == "sales":
        user.groups.add(Group.objects.get_or_create(name="sales_manager")[0])
    user = type(user).objects.get(pk=user.pk)
    with pytest.raises(ValidationError) as err:
        device_claim(device_key=stray, asset=spare_asset, actor=user, now=NOW)
    assert "actor" in _field_errors(err)
    assert not m.DeviceLink.objects.filter(device_key=stray).exists()


def test_superuser_may_claim(stray: str, spare_asset: m.Asset) -> None:
    admin = f.UserFactory(username="root", is_superuser=True)
    device_claim(device_key=stray, asset=spare_asset, actor=admin, now=NOW)
    assert m.DeviceLink.objects.get(device_key=stray).asset_id == spare_asset.pk


def test_rejects_decommissioned_asset(stray: str, spare_asset: m.Asset, agent: Any) -> None:
    m.Asset.objects.filter(pk=spare_asset.pk).update(status=AssetStatus.DECOMMISSIONED)
    with pytest.raises(ValidationError) as err:
        device_claim(device_key=stray, asset=spare_asset, actor=agent, now=NOW)
    assert "asset" in _field_errors(err)


def test_release_detaches_device_and_records_it(stray: str, spare_asset: m.Asset, agent: Any,
                                                world: World) -> None:
    device_claim(device_key=stray, asset=spare_asset, actor=agent, now=NOW)
    left = device_release(device_key=stray, actor=agent, now=NOW)
    assert left == spare_asset
    assert not m.DeviceLink.objects.filter(device_key=stray).exists()
    claim = m.AuditLog.objects.get(action="device.claim")
    audit = m.AuditLog.objects.get(action="device.release")
    assert (audit.object_type, audit.object_id) == ("devicelink", claim.object_id)
    assert audit.before is not None
    assert audit.before["device_key"] == stray
    assert audit.before["asset"] == spare_asset.pk
    assert audit.after is None
    assert m.Interaction.objects.filter(
        account=world.account, summary=f"Device {stray} detached from {spare_asset.serial}"
    ).exists()


def test_release_rejects_unclaimed_device(stray: str, agent: Any) -> None:
    with pytest.raises(ValidationError) as err:
        device_release(device_key=stray, actor=agent, now=NOW)
    assert "not attached" in _field_errors(err)["device_key"][0]


def test_release_needs_desk_role(stray: str, spare_asset: m.Asset, agent: Any) -> None:
    device_claim(device_key=stray, asset=spare_asset, actor=agent, now=NOW)
    with pytest.raises(ValidationError) as err:
        device_release(device_key=stray, actor=f.UserFactory(username="nobody"), now=NOW)
    assert "actor" in _field_errors(err)
    assert m.DeviceLink.objects.filter(device_key=stray).exists()


# --- two desk agents at once -------------------------------------------------------------

@pytest.fixture
def committed_stray(transactional_db: None) -> Iterator[str]:
    """The stray device committed to the store (threads use their own connections); the
    `devices` table is not Django-managed, so the row is removed afterwards."""
    store_device(STRAY)
    yield STRAY
    with connection.cursor() as cur:
        cur.execute("DELETE FROM devices WHERE device_key = %s", [STRAY])


@pytest.mark.django_db(transaction=True)
def test_two_agents_claiming_one_device_at_once_one_wins(committed_stray: str,
                                                         world: World) -> None:
    first = f.AssetFactory(site=world.site, equipment_model=world.asset.equipment_model)
    second = f.AssetFactory(site=world.site, equipment_model=world.asset.equipment_model)
    claims = [(user_with_role("dora", Role.DESK_AGENT), first),
              (user_with_role("dirk", Role.DESK_AGENT), second)]
    outcomes = race([
        lambda actor=actor, asset=asset: device_claim(device_key=committed_stray, asset=asset,
                                                      actor=actor, now=NOW)
        for actor, asset in claims])
    won = [o for o in outcomes if isinstance(o, m.Asset)]
    refused = [o for o in outcomes if isinstance(o, ValidationError)]
    for out in outcomes:
        if isinstance(out, BaseException) and not isinstance(out, ValidationError):
            raise out
    assert len(won) == 1
    assert len(refused) == 1
    assert "already attached" in refused[0].message_dict["device_key"][0]
    link = m.DeviceLink.objects.get(device_key=committed_stray)
    assert link.asset_id == won[0].pk
    assert m.AuditLog.objects.filter(action="device.claim").count() == 1
