"""What a post may contain, beyond its lexicon (which already bounds title and content in bytes
and graphemes): the community's `contentRules` and the self-labels we accept.

  * `contentRules.textOnly`, or an empty `allowedEmbedTypes`: no embed at all;
  * `allowedEmbedTypes` (images | video | external | post): the embed's kind must be listed;
  * self-labels: only nsfw, spoiler and violence (what Coves' clients show);
  * a post says something: a title, content or an embed.
Violations are 400 ContentRuleViolation (a community's rule) or InvalidContent (ours).
"""

from __future__ import annotations

from typing import Any, Final

from .errors import InvalidRequest

__all__ = ["SELF_LABELS", "check_post"]

SELF_LABELS: Final = frozenset({"nsfw", "spoiler", "violence"})
_EMBED_PREFIX: Final = "social.coves.embed."


def _embed_kind(embed: dict[str, Any]) -> str:
    kind = str(embed.get("$type", ""))
    return kind.removeprefix(_EMBED_PREFIX).removesuffix("#main")


def check_post(record: dict[str, Any], rules: dict[str, Any] | None) -> None:
    """Refuse a post record the community's `rules` (its profile's contentRules) forbid.

    Raises:
        InvalidRequest: ContentRuleViolation or InvalidContent, saying which rule.
    """
    embed = record.get("embed")
    if not (record.get("title") or record.get("content") or embed):
        raise InvalidRequest("A post needs a title, content or an embed", error="InvalidContent")
    labels = record.get("labels") or {}
    values = {item.get("val") for item in labels.get("values", ()) if isinstance(item, dict)}
    if not values <= SELF_LABELS:
        raise InvalidRequest(f"Self-labels may only be {', '.join(sorted(SELF_LABELS))}; got "
                             f"{', '.join(sorted(str(v) for v in values - SELF_LABELS))}",
                             error="InvalidContent")
    if not embed or not isinstance(rules, dict):
        return
    allowed = rules.get("allowedEmbedTypes")
    if rules.get("textOnly") or allowed == []:
        raise InvalidRequest("This community is text-only: posts may not carry an embed",
                             error="ContentRuleViolation")
    kind = _embed_kind(embed)
    if isinstance(allowed, list) and kind not in allowed:
        raise InvalidRequest(f"This community does not accept {kind} embeds (allowed: "
                             f"{', '.join(allowed)})", error="ContentRuleViolation")
