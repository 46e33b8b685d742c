"""Suite 2, images end to end: JPEG and PNG posts, several images in one post (uploaded through
the AppView into the community's repo) and an image in a comment (uploaded by the commenter to
their own PDS); every URL the views give returns the uploaded bytes from the PDS; a wrong
type, an oversize and an empty body are refused over HTTP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from api.blob import BLOB_MAX_BYTES
from engine.db import Database
from tests.api.images import jpeg, png
from tests.pds.harness import PdsNetwork

from .appview import AppView, User, open_appview
from .forum import COMMENT, NOW

UPLOAD = "social.coves.blob.uploadBlob"


async def upload(app: AppView, user: User, community: str, data: bytes,
                 mime: str) -> tuple[int, Any]:
    response = await app.http.post(f"/xrpc/{UPLOAD}", params={"community": community},
                                   content=data, headers={"Content-Type": mime,
                                                          **await app.headers(user, UPLOAD)})
    return response.status_code, response.json()


def images(*blobs: dict[str, Any]) -> dict[str, Any]:
    return {"$type": "social.coves.embed.images",
            "images": [{"image": blob, "alt": f"image {n}"} for n, blob in enumerate(blobs)]}


async def test_images_in_posts_and_comments_are_served_from_the_pds(
        pds_network_factory: Callable[..., PdsNetwork], db: Database, database_url: str) -> None:
    network = pds_network_factory(1)
    async with open_appview(network, database_url, db=db) as app, httpx.AsyncClient() as web:
        alice, bob = await app.user("alice"), await app.user("bob")
        _, community = await app.call(alice, "social.coves.community.create",
                                      {"name": "photos", "description": "pictures"})
        c = community["did"]
        files = {"jpeg": jpeg(7), "png": png(3, 3, seed=7), "a": png(seed=11),
                 "b": jpeg(11), "c": png(seed=12)}
        blobs = {}
        for name, data in files.items():
            status, out = await upload(app, alice, c, data,
                                       "image/jpeg" if data[:2] == b"\xff\xd8" else "image/png")
            assert status == 200, out
            blobs[name] = out["blob"]
        expected: dict[str, list[bytes]] = {}
        for title, names in (("a jpeg", ["jpeg"]), ("a png", ["png"]), ("three", ["a", "b", "c"])):
            status, post = await app.call(alice, "social.coves.community.post.create", {
                "community": c, "title": title, "embed": images(*(blobs[n] for n in names))})
            assert status == 200, post
            expected[post["uri"]] = [files[n] for n in names]
        # read-after-write: the feed already shows the images, as URLs on the community's PDS
        _, feed = await app.get("social.coves.feed.getCommunity", community=c, limit=10)
        assert {item["post"]["uri"] for item in feed["feed"]} == set(expected)
        for item in feed["feed"]:
            shown = item["post"]["embed"]["images"]
            wanted = expected[item["post"]["uri"]]
            assert len(shown) == len(wanted)
            for image, data in zip(shown, wanted):
                assert image["fullsize"].startswith(network.pds_urls[0])
                response = await web.get(image["fullsize"])
                assert response.status_code == 200 and response.content == data
        # a comment's image lives in the commenter's own repo
        comment_blob = await bob.pds.upload_blob(bob.account, jpeg(99), "image/jpeg")
        post_uri = next(iter(expected))
        post_ref = {"uri": post_uri,
                    "cid": next(i["post"]["cid"] for i in feed["feed"] if i["post"]["uri"] == post_uri)}
        await bob.create(COMMENT, {"reply": {"root": post_ref, "parent": post_ref},
                                   "content": "look", "embed": images(comment_blob),
                                   "createdAt": NOW})

        async def comment_indexed() -> bool:
            _, thread = await app.get("social.coves.community.comment.getComments", post=post_uri)
            return len(thread.get("comments", ())) == 1

        await app.eventually(comment_indexed)
        _, thread = await app.get("social.coves.community.comment.getComments", post=post_uri)
        [image] = thread["comments"][0]["comment"]["embed"]["images"]
        response = await web.get(image["fullsize"])
        assert response.status_code == 200 and response.content == jpeg(99)
        assert bob.did in image["fullsize"]

        # refused: not an image, a lying header, empty, too large
        for data, mime, status, error in [
                (b"%PDF-1.7 not an image", "image/png", 400, "InvalidMimeType"),
                (png(), "image/webp", 400, "InvalidMimeType"),
                (b"", "image/jpeg", 400, "InvalidBlob"),
                (jpeg() + bytes(BLOB_MAX_BYTES), "image/jpeg", 413, "PayloadTooLarge")]:
            got, out = await upload(app, alice, c, data, mime)
            assert (got, out["error"]) == (status, error), out
