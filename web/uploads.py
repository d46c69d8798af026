"""Uploads are refused while they arrive, not after: a file part larger than the limit stops
being read (and stored in a temporary file) the moment it passes the limit.

``aftercare web`` also gives waitress a request body limit (web/server.py), so an oversized
request is cut off by the server before Django sees it; this handler is the same limit for
any other WSGI server, and tells the view why the file is missing.
"""

from __future__ import annotations

from typing import Any

from django.core.files.uploadhandler import FileUploadHandler, StopUpload

from service_crm.models.contract import MAX_DOCUMENT_BYTES

REFUSED_ATTR = "upload_refused"


def upload_refusal(request: Any) -> str | None:
    """Why the request's upload was stopped, or None."""
    reason = getattr(request, REFUSED_ATTR, None)
    return None if reason is None else str(reason)


def upload_form_valid(request: Any, form: Any, field: str) -> bool:
    """Validate ``form``, whose file is ``field``; where the request's upload was stopped, the
    reason stands as that field's only error and the form is not valid."""
    refused = upload_refusal(request)
    if refused is None:
        return bool(form.is_valid())
    form.is_valid()
    form.errors.pop(field, None)
    form.add_error(field, refused)
    return False


class SizeLimitedUploadHandler(FileUploadHandler):
    """First in FILE_UPLOAD_HANDLERS: counts each file's bytes and stops the upload past
    MAX_DOCUMENT_BYTES, before the next handler stores the chunk."""

    def __init__(self, request: Any = None) -> None:
        super().__init__(request)
        self.received = 0

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self.received = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        self.received += len(raw_data)
        if self.received > MAX_DOCUMENT_BYTES:
            if self.request is not None:
                setattr(self.request, REFUSED_ATTR,
                        f"A document may be at most {MAX_DOCUMENT_BYTES // 2**20} MB: the "
                        "upload was stopped there.")
            # Not a connection reset: the rest of the body is read and thrown away, so the
            # form's other fields (and its CSRF token) still arrive and the page can answer.
            raise StopUpload(connection_reset=False)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None
