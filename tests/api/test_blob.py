"""social.coves.blob.uploadBlob: images by their bytes' signature, size bounds, uploaded into
the community's repo on the reference PDS."""

from __future__ import annotations

import pytest

from api.blob import BLOB_MAX_BYTES, sniff
from tests import factories as f

from .conftest import WriteWorld
from .images import jpeg, png, webp
from .test_post_write import community

UPLOAD = "social.coves.blob.uploadBlob"


async def upload(world: WriteWorld, community_did: str, data: bytes, mime: str,
                 caller: str | None = None) -> tuple[int, dict]:
    nsid = f"{UPLOAD}?community={community_did}"
    headers = {"Content-Type": mime, **world.resolver.bearer(caller or f.did("u"), UPLOAD)}
    response = await world.client.post(f"/xrpc/{nsid}", data=data, headers=headers)
    return response.status_code, await response.get_json()


@pytest.mark.parametrize(("data", "mime"), [(jpeg(), "image/jpeg"), (png(), "image/png"),
                                            (webp(), "image/webp"), (b"GIF89a....", None),
                                            (b"<svg/>", None), (b"\xff\xd8", None)])
def test_types_come_from_the_signature(data: bytes, mime: str | None) -> None:
    assert sniff(data) == mime


async def test_images_are_uploaded_to_the_community_repo(world: WriteWorld) -> None:
    c = await community(world)
    for data, mime in ((jpeg(1), "image/jpeg"), (png(seed=1), "image/png"), (webp(1), "image/webp")):
        status, out = await upload(world, c, data, mime)
        assert status == 200, out
        blob = out["blob"]
        assert blob["mimeType"] == mime and blob["size"] == len(data)
        assert blob["ref"]["$link"].startswith("bafkrei")


async def test_wrong_empty_and_oversize_blobs_are_refused(world: WriteWorld) -> None:
    c = await community(world)
    cases = [(b"just text", "image/png", 400, "InvalidMimeType"),
             (png(), "image/jpeg", 400, "InvalidMimeType"),  # the header lies about the bytes
             (b"", "image/png", 400, "InvalidBlob"),
             (png() + b"\0" * BLOB_MAX_BYTES, "image/png", 413, "PayloadTooLarge")]
    for data, mime, status, error in cases:
        got, out = await upload(world, c, data, mime)
        assert (got, out["error"]) == (status, error), out
    got, out = await upload(world, f.did("elsewhere"), png(), "image/png")
    assert (got, out["error"]) == (404, "CommunityNotFound")
    response = await world.client.post(f"/xrpc/{UPLOAD}?community={c}", data=png(),
                                       headers={"Content-Type": "image/png"})
    assert response.status_code == 401
