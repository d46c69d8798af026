"""What the CRM accepts as a PDF: checked by content, never by the file name.

A contract document is handed to customers, so it must really be a PDF (not HTML or a program
renamed ``.pdf``), readable, and free of what makes a PDF act on its own (scripts, launch
actions, embedded files).
"""

from __future__ import annotations

from typing import Any

SIGNATURE = b"%PDF-"
# Names in the document catalogue (or its /Names tree) that make a PDF do something when opened.
ACTIVE = ("/JavaScript", "/JS", "/Launch", "/EmbeddedFiles", "/AA", "/OpenAction")


def _active_parts(reader: Any) -> list[str]:
    root = reader.trailer["/Root"]
    found = [name for name in ("/AA",) if name in root]
    action = root.get("/OpenAction")
    if action is not None:
        action = action.get_object()
        # An OpenAction that is a destination (an array) only opens a page: harmless.
        if hasattr(action, "get") and action.get("/S") is not None:
            found.append(f"/OpenAction {action.get('/S')}")
    names = root.get("/Names")
    if names is not None:
        names = names.get_object()
        found += [n for n in ("/JavaScript", "/EmbeddedFiles") if n in names]
    for page in reader.pages:
        if "/AA" in page:
            found.append("/AA on a page")
            break
    return found


def pdf_problem(file: Any) -> str | None:
    """Why ``file`` (a binary file object) is not an acceptable PDF, or None when it is.
    Reads it from the start and leaves it at the start."""
    from pypdf import PdfReader

    file.seek(0)
    try:
        if file.read(len(SIGNATURE)) != SIGNATURE:
            return "This is not a PDF (its content does not start like one)."
        file.seek(0)
        try:
            reader = PdfReader(file, strict=False)
            if reader.is_encrypted:
                return "Password-protected PDFs cannot be checked: upload it without one."
            pages = len(reader.pages)
            active = _active_parts(reader)
        # The parser meets untrusted bytes: whatever it fails with, the file is refused.
        except Exception:  # noqa: BLE001
            return "This PDF is damaged: it cannot be read."
        if pages == 0:
            return "This PDF has no pages."
        if active:
            return f"This PDF runs actions when opened ({', '.join(active)}): not accepted."
        return None
    finally:
        file.seek(0)
