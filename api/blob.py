"""social.coves.blob.uploadBlob: an image for a post, stored in the community's repository.

Posts live in the community's repo, and a PDS only accepts a record whose blobs were uploaded
to that same repo, so the AppView uploads with the community's credentials. Accepted: JPEG, PNG
and WebP, recognised by the bytes' signature (a Content-Type header that disagrees is refused,
so a renamed file cannot pass), 1 byte to BLOB_MAX_BYTES. The answer is the PDS's blob ref, to
put in a `social.coves.embed.images` embed; views show it as a URL on the community's PDS.
"""

from __future__ import annotations

from typing import Final

from .errors import InvalidRequest, NotFound, PayloadTooLarge
from .pds_client import PdsError
from .writes import pds_error, writes_of
from .xrpc import Body, Call, Queries

__all__ = ["ACCEPTED", "BLOB_MAX_BYTES", "procedures", "sniff"]

procedures = Queries()
BLOB_MAX_BYTES: Final = 6_000_000  # 6 MB, as lexicons count sizes (the external thumb's maxSize)
ACCEPTED: Final = ("image/jpeg", "image/png", "image/webp")


def sniff(data: bytes) -> str | None:
    """The image type the bytes' signature says, or None.

    JPEG: FF D8 FF (JFIF/EXIF SOI + marker); PNG: the 8-byte signature of RFC 2083 §12.11;
    WebP: a RIFF container whose form type is "WEBP" (RFC 9649 §2).
    """
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _too_large() -> PayloadTooLarge:
    return PayloadTooLarge(f"Blob larger than {BLOB_MAX_BYTES} bytes (6 MB)", error="BlobTooLarge")


@procedures.procedure("social.coves.blob.uploadBlob", input="blob")
async def upload_blob(call: Call) -> Body:
    """Check the image and upload it to the community's repository; answer `{blob}`."""
    writes = writes_of(call)
    data: bytes = call.input
    if not data:
        raise InvalidRequest("Empty blob: send the image's bytes as the request body",
                             error="InvalidBlob")
    if len(data) > BLOB_MAX_BYTES:
        raise _too_large()
    declared = (call.content_type or "").split(";", 1)[0].strip().lower()
    kind = sniff(data)
    if kind is None:
        raise InvalidRequest(f"Not an accepted image: the bytes are none of {', '.join(ACCEPTED)}",
                             error="InvalidMimeType")
    if declared and declared not in ("application/octet-stream", "*/*") and declared != kind:
        raise InvalidRequest(f"Content-Type {declared} does not match the bytes ({kind})",
                             error="InvalidMimeType")
    ref = call.params["community"]
    community = await writes.store.find(did=ref if ref.startswith("did:") else None,
                                        handle=None if ref.startswith("did:") else ref)
    if community is None or community.did is None:
        raise NotFound(f"Community not hosted here: {ref}", error="CommunityNotFound")
    try:
        token = await writes.tokens.access_token(community)
        blob = await writes.pds.upload_blob(community.pds_url, token, data, kind)
    except PdsError as exc:
        raise pds_error(exc) from exc
    return {"blob": blob}
