"""api/content_rules.py: a community's embed rules, our self-labels, and empty posts."""

from __future__ import annotations

from typing import Any

import pytest

from api.content_rules import check_post
from api.errors import InvalidRequest

IMAGES = {"$type": "social.coves.embed.images", "images": []}
LINK = {"$type": "social.coves.embed.external", "external": {"uri": "https://example.com"}}


@pytest.mark.parametrize(("record", "rules", "error"), [
    ({"title": "t", "embed": LINK}, {"textOnly": True}, "ContentRuleViolation"),
    ({"title": "t", "embed": LINK}, {"allowedEmbedTypes": []}, "ContentRuleViolation"),
    ({"title": "t", "embed": IMAGES}, {"allowedEmbedTypes": ["external"]}, "ContentRuleViolation"),
    ({}, None, "InvalidContent"),
    ({"title": "", "content": ""}, None, "InvalidContent"),
    ({"title": "t", "labels": {"values": [{"val": "porn"}]}}, None, "InvalidContent"),
    ({"title": "t", "labels": {"values": [{"val": "nsfw"}, {"val": "gore"}]}}, None, "InvalidContent"),
])
def test_refused(record: dict[str, Any], rules: dict[str, Any] | None, error: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        check_post(record, rules)
    assert refused.value.error == error


@pytest.mark.parametrize(("record", "rules"), [
    ({"title": "t", "embed": LINK}, None),
    ({"title": "t", "embed": LINK}, {}),
    ({"title": "t", "embed": LINK}, {"allowedEmbedTypes": ["external", "images"]}),
    ({"title": "t"}, {"textOnly": True}),
    ({"embed": IMAGES}, {"allowedEmbedTypes": ["images"]}),
    ({"content": "c", "labels": {"values": [{"val": v} for v in ("nsfw", "spoiler", "violence")]}},
     None),
])
def test_allowed(record: dict[str, Any], rules: dict[str, Any] | None) -> None:
    check_post(record, rules)
