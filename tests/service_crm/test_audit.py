"""The audit trail and timeline writers: rows recorded in a batch."""

from __future__ import annotations

import pytest
from django.db import transaction

from service_crm import models as m
from service_crm.services.audit import audit_record, interaction_record, records_batched
from tests.support.world import NOW, World

pytestmark = [pytest.mark.db, pytest.mark.django_db]


def test_batched_rows_are_written_at_the_end_of_the_block_in_order(world: World) -> None:
    with transaction.atomic():
        with records_batched():
            for n in range(3):
                interaction_record(account=world.account, at=NOW, summary=f"step {n}")
                audit_record(actor=None, action=f"test.step{n}", obj=world.asset, before=None,
                             at=NOW)
            assert not m.Interaction.objects.filter(summary__startswith="step").exists()
        assert list(m.Interaction.objects.filter(summary__startswith="step").order_by("pk")
                    .values_list("summary", flat=True)) == ["step 0", "step 1", "step 2"]
        assert list(m.AuditLog.objects.filter(action__startswith="test.").order_by("pk")
                    .values_list("action", flat=True)) == ["test.step0", "test.step1",
                                                           "test.step2"]


def _record_then_fail(world: World) -> None:
    with records_batched():
        interaction_record(account=world.account, at=NOW, summary="never")
        raise ValueError("boom")


def test_batch_that_raises_writes_nothing(world: World) -> None:
    with transaction.atomic():
        with pytest.raises(ValueError, match="boom"):
            _record_then_fail(world)
        assert not m.Interaction.objects.filter(summary="never").exists()


def test_nested_batches_write_once_with_the_outer_block(world: World) -> None:
    with transaction.atomic(), records_batched():
        with records_batched():
            interaction_record(account=world.account, at=NOW, summary="inner")
        assert not m.Interaction.objects.filter(summary="inner").exists()
    assert m.Interaction.objects.filter(summary="inner").count() == 1


@pytest.mark.django_db(transaction=True)
def test_batch_outside_a_transaction_is_refused() -> None:
    with pytest.raises(RuntimeError, match="inside the transaction"), records_batched():
        pass  # pragma: no cover


def test_without_a_batch_each_row_is_written_at_once(world: World) -> None:
    entry = interaction_record(account=world.account, at=NOW, summary="now")
    assert entry.pk is not None
    assert m.Interaction.objects.filter(pk=entry.pk).exists()
