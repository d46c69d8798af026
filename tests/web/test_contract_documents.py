"""Contract documents: uploaded by the back office, downloaded by the account's customers in
the portal; nobody else's documents are reachable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile

from service_crm import models as m
from service_crm.models import contract as contract_models
from tests.support.web import minimal_pdf
from tests.support.world import ServedWorld

PDF = minimal_pdf()


@pytest.fixture(autouse=True)
def _media(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"


def _document(account: m.Account, title: str = "Signed agreement") -> m.ContractDocument:
    contract = m.MaintenanceContract.objects.filter(account=account).first()
    assert contract is not None
    doc = m.ContractDocument(contract=contract, title=title)
    doc.file.save("Vertrag final.PDF", ContentFile(PDF), save=False)
    doc.full_clean()
    doc.save()
    return doc


def test_customer_sees_and_downloads_own_contract_document(
        world: ServedWorld, customer_user: Any, browser_client: Any) -> None:
    doc = _document(world.north.account)
    client = browser_client(customer_user)
    page = client.get("/portal/").content.decode()
    assert doc.contract.number in page
    assert f"/portal/contract-documents/{doc.pk}/" in page
    response = client.get(f"/portal/contract-documents/{doc.pk}/")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PDF
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("attachment;")
    assert doc.contract.number in response["Content-Disposition"]
    # Stored under a random name, not the uploader's.
    assert "Vertrag" not in doc.file.name
    assert doc.file.name.endswith(".pdf")


def test_another_accounts_document_is_not_found(world: ServedWorld, other_customer_user: Any,
                                                browser_client: Any) -> None:
    doc = _document(world.north.account)
    client = browser_client(other_customer_user)
    assert client.get(f"/portal/contract-documents/{doc.pk}/").status_code == 404
    assert f"/portal/contract-documents/{doc.pk}/" not in client.get("/portal/").content.decode()


@pytest.mark.parametrize("persona", ["field_engineer", "desk_agent"])
def test_portal_downloads_are_for_customers(world: ServedWorld, persona: str, browser_client: Any,
                                            request: pytest.FixtureRequest) -> None:
    doc = _document(world.north.account)
    user = request.getfixturevalue(persona)
    assert browser_client(user).get(f"/portal/contract-documents/{doc.pk}/").status_code == 403


def test_missing_file_answers_404_with_reason(world: ServedWorld, customer_user: Any,
                                              browser_client: Any) -> None:
    doc = _document(world.north.account)
    Path(doc.file.path).unlink()
    response = browser_client(customer_user).get(f"/portal/contract-documents/{doc.pk}/")
    assert response.status_code == 404


def test_only_pdfs_within_the_size_limit_are_accepted(world: ServedWorld,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    contract = m.MaintenanceContract.objects.filter(account=world.north.account).first()
    assert contract is not None
    doc = m.ContractDocument(contract=contract, title="Terms")
    doc.file.save("terms.docx", ContentFile(b"PK\x03\x04"), save=False)
    with pytest.raises(ValidationError) as err:
        doc.full_clean()
    assert "PDF" in str(err.value.message_dict["file"])
    monkeypatch.setattr(contract_models, "MAX_DOCUMENT_BYTES", 10)
    big = m.ContractDocument(contract=contract, title="Terms")
    big.file.save("terms.pdf", ContentFile(PDF), save=False)
    with pytest.raises(ValidationError) as err:
        big.full_clean()
    assert "at most" in str(err.value.message_dict["file"])


# --- the desk adds documents --------------------------------------------------------------

def _upload(client: Any, contract: m.MaintenanceContract, name: str, data: bytes,
            title: str = "Signed agreement 2026") -> Any:
    from django.core.files.uploadedfile import SimpleUploadedFile

    return client.post(f"/desk/contracts/{contract.pk}/documents/",
                       {"title": title, "file": SimpleUploadedFile(name, data)})


def test_desk_agent_adds_a_document_the_customer_then_downloads(
        world: ServedWorld, desk_agent: Any, customer_user: Any, browser_client: Any,
        settings: Any) -> None:
    contract = m.MaintenanceContract.objects.get(account=world.north.account)
    desk = browser_client(desk_agent)
    assert 'data-testid="contract-document-form"' in desk.get(
        f"/desk/accounts/{world.north.account.pk}/").content.decode()
    response = _upload(desk, contract, "agreement.pdf", PDF)
    assert response.status_code == 302
    doc = m.ContractDocument.objects.get(contract=contract)
    assert doc.title == "Signed agreement 2026"
    audit = m.AuditLog.objects.get(action="contract.document_add")
    assert (audit.object_type, audit.object_id, audit.actor_label) == (
        "contractdocument", str(doc.pk), "desk")
    assert m.Interaction.objects.filter(account=world.north.account,
                                        summary__contains=contract.number).exists()
    download = browser_client(customer_user).get(f"/portal/contract-documents/{doc.pk}/")
    assert b"".join(download.streaming_content) == PDF


def test_a_file_that_is_not_a_pdf_is_refused_next_to_the_field_and_not_stored(
        world: ServedWorld, desk_agent: Any, browser_client: Any, settings: Any) -> None:
    contract = m.MaintenanceContract.objects.get(account=world.north.account)
    response = _upload(browser_client(desk_agent), contract, "terms.docx", b"PK\x03\x04")
    assert response.status_code == 400
    page = response.content.decode()
    assert "Contract documents are PDF files." in page
    assert 'value="Signed agreement 2026"' in page        # what was typed is kept
    assert not m.ContractDocument.objects.exists()
    media = Path(settings.MEDIA_ROOT)
    assert not media.exists() or not any(p.is_file() for p in media.rglob("*"))


@pytest.mark.parametrize("persona", ["field_engineer", "customer_user"])
def test_only_the_desk_adds_documents(world: ServedWorld, persona: str, browser_client: Any,
                                      request: pytest.FixtureRequest) -> None:
    contract = m.MaintenanceContract.objects.get(account=world.north.account)
    user = request.getfixturevalue(persona)
    assert _upload(browser_client(user), contract, "a.pdf", PDF).status_code == 403
    assert not m.ContractDocument.objects.exists()


def test_the_service_refuses_an_actor_without_a_desk_role(world: ServedWorld,
                                                           field_engineer: Any) -> None:
    from service_crm.services.contracts import contract_document_add

    contract = m.MaintenanceContract.objects.get(account=world.north.account)
    with pytest.raises(ValidationError) as err:
        contract_document_add(contract=contract, title="x", file=ContentFile(PDF, "a.pdf"),
                              actor=field_engineer)
    assert "actor" in err.value.message_dict
