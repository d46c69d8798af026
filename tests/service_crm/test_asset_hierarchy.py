"""Parent/child assets: a line and its machines, on one account, without cycles."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from service_crm import models as m
from tests import factories as f
from tests.support.world import World

pytestmark = [pytest.mark.db, pytest.mark.django_db]


def _asset(world: World, **kw: object) -> m.Asset:
    kw.setdefault("site", world.site)
    return f.AssetFactory(equipment_model=world.asset.equipment_model, **kw)


def test_machine_names_its_line_and_the_line_lists_it(world: World) -> None:
    line = _asset(world, serial="LINE-1")
    world.asset.parent = line
    world.asset.full_clean()
    world.asset.save()
    assert list(line.children.all()) == [world.asset]


def test_parent_on_another_account_is_refused(world: World) -> None:
    other_site = f.SiteFactory(account=f.AccountFactory(name="Elsewhere AG"), name="Plant")
    foreign = _asset(world, site=other_site, serial="FOREIGN-1")
    world.asset.parent = foreign
    with pytest.raises(ValidationError, match="another account") as err:
        world.asset.full_clean()
    assert "parent" in err.value.message_dict


def test_own_parent_and_cycles_are_refused(world: World) -> None:
    world.asset.parent = world.asset
    with pytest.raises(ValidationError, match="own parent"):
        world.asset.full_clean()
    line = _asset(world, serial="LINE-1", parent=world.asset)
    unit = _asset(world, serial="UNIT-1", parent=line)
    world.asset.parent = unit  # asset -> unit -> line -> asset
    with pytest.raises(ValidationError, match="cycle"):
        world.asset.full_clean()


def test_deleting_the_line_leaves_its_machines(world: World) -> None:
    line = _asset(world, serial="LINE-1")
    m.Asset.objects.filter(pk=world.asset.pk).update(parent=line)
    line.delete()
    world.asset.refresh_from_db()
    assert world.asset.parent is None
