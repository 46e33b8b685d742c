"""Tests for engine.lexicon: one test per rule family, the Coves record samples, and a structural
comparison of our lexicons with Coves' published ones (the wire contract)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import regex
from hypothesis import given
from hypothesis import strategies as st

from engine.errors import RejectedEvent, RejectReason
from engine.lexicon import LEXICON_DIR, Lexicons, LexiconViolation, load_default
from engine.lexicon_primitives import _max_bytes, _max_graphemes, _min_bytes, _min_graphemes

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "coves-lexicons"
CID = "bafyreigj3fwnwjuzr35k2kuzmb5dixxczrzjhqkr5srlqplsh6gq3bj3si"
POST_URI = "at://did:plc:alice123/social.coves.community.post/3kbx2n5pqaz2c"
# Union members that Coves' post and comment views name but never defined; we keep the refs as
# Coves publishes them, and an open union lets such values through unchecked.
KNOWN_DANGLING = frozenset({
    "social.coves.embed.external#view", "social.coves.embed.images#view",
    "social.coves.embed.post#view", "social.coves.embed.record#view",
    "social.coves.embed.recordWithMedia#view", "social.coves.embed.video#view",
})


def lexicons(**defs: Any) -> Lexicons:
    """A one-document lexicon set, `test.lex.doc`, holding `defs`."""
    return Lexicons([{"lexicon": 1, "id": "test.lex.doc", "defs": defs}])


def violation(lex: Lexicons, ref: str, value: object) -> str:
    with pytest.raises(LexiconViolation) as caught:
        lex.validate_value(ref, value)
    return str(caught.value)


def field(schema: dict[str, Any]) -> Lexicons:
    """A lexicon with one object def, `#main`, whose only field `f` has `schema`."""
    return lexicons(main={"type": "object", "properties": {"f": schema}})


def assert_field(schema: dict[str, Any], good: list[object], bad: dict[str, object]) -> None:
    """Every `good` value passes as field `f`; each `bad` value fails with rule `rule`."""
    lex = field(schema)
    for value in good:
        lex.validate_value("test.lex.doc", {"f": value})
    for rule, value in bad.items():
        assert violation(lex, "test.lex.doc", {"f": value}) == f"f: {rule}"


def vote(**changes: Any) -> dict[str, Any]:
    record = {"$type": "social.coves.feed.vote", "subject": {"uri": POST_URI, "cid": CID},
              "direction": "up", "createdAt": "2025-01-09T15:00:00.123Z"}
    record.update(changes)
    return record


def test_record_type_must_name_the_collection() -> None:
    lex = load_default()
    lex.validate_record("social.coves.feed.vote", vote())
    lex.validate_record("social.coves.feed.vote", {k: v for k, v in vote().items() if k != "$type"})
    with pytest.raises(RejectedEvent) as caught:
        lex.validate_record("social.coves.feed.vote", vote(**{"$type": "social.coves.feed.like"}))
    assert caught.value.reason is RejectReason.INVALID_RECORD
    assert caught.value.detail == "$type: must be social.coves.feed.vote"
    assert lex.has_record("social.coves.feed.vote")
    assert not lex.has_record("social.coves.feed.defs")


def test_record_that_is_not_an_object_is_rejected() -> None:
    with pytest.raises(RejectedEvent) as caught:
        load_default().validate_record("social.coves.feed.vote", ["up"])  # type: ignore[arg-type]
    assert caught.value.detail == "must be an object"


def test_object_required_and_unknown_fields() -> None:
    lex = load_default()
    lex.validate_record("social.coves.feed.vote", vote(mood="happy", extra={"x": [1]}))
    del_subject = {k: v for k, v in vote().items() if k != "subject"}
    with pytest.raises(RejectedEvent) as caught:
        lex.validate_record("social.coves.feed.vote", del_subject)
    assert caught.value.detail == "subject: required"


def test_object_nullable_fields() -> None:
    lex = lexicons(main={"type": "object", "required": ["a"], "nullable": ["a"],
                         "properties": {"a": {"type": "string"}, "b": {"type": "string"}}})
    lex.validate_value("test.lex.doc", {"a": None})
    assert violation(lex, "test.lex.doc", {}) == "a: required"
    assert violation(lex, "test.lex.doc", {"a": "x", "b": None}) == "b: must not be null"


def test_string_lengths_count_utf8_bytes_and_graphemes() -> None:
    assert_field({"type": "string", "maxLength": 4},
                 good=["abcd", "éé", ""], bad={"longer than 4 bytes": "ééa"})
    assert_field({"type": "string", "minLength": 3},
                 good=["abc", "é€"], bad={"shorter than 3 bytes": "é"})
    family = "👨‍👩‍👧"  # one grapheme, five code points, 18 bytes
    assert_field({"type": "string", "maxGraphemes": 2},
                 good=[family * 2, "e\u0301e\u0301", "a\r\n"], bad={"longer than 2 graphemes": "abc"})
    assert_field({"type": "string", "minGraphemes": 2},
                 good=["ab", "\r\na"], bad={"shorter than 2 graphemes": family})


def test_string_enum_const_and_open_known_values() -> None:
    assert_field({"type": "string", "enum": ["a", "b"]},
                 good=["a", "b"], bad={"must be one of a, b": "c"})
    assert_field({"type": "string", "const": "x"}, good=["x"], bad={"must be 'x'": "y"})
    assert_field({"type": "string", "knownValues": ["up", "down"]}, good=["sideways"],
                 bad={"must be a string": 1})


@pytest.mark.parametrize(("fmt", "good", "bad", "rule"), [
    ("did", "did:plc:abc123", "plc:abc123", "must be a did"),
    ("handle", "alice.example.com", "alice", "must be a handle"),
    ("at-identifier", "alice.example.com", "@alice", "must be a did or handle"),
    ("at-identifier", "did:web:example.com", "did:", "must be a did or handle"),
    ("at-uri", POST_URI, "https://example.com/x", "must be an at-uri"),
    ("nsid", "social.coves.feed.vote", "vote", "must be an nsid"),
    ("cid", CID, "not-a-cid", "must be a cid"),
    ("datetime", "2025-01-09T15:00:00Z", "2025-01-09 15:00:00", "must be a datetime"),
    ("uri", "https://example.com/a?b=c", "example.com", "must be a uri"),
    ("uri", "mailto:a@example.com", "https://" + "a" * 8200, "must be a uri"),
    ("language", "pt-BR", "english!", "must be a language tag"),
    ("language", "i-klingon", "-en", "must be a language tag"),
    ("tid", "3kbx2n5pqaz2c", "3kbx2n5pqaz2", "must be a tid"),
    ("record-key", "self", "..", "must be a record key"),
])
def test_string_formats(fmt: str, good: str, bad: str, rule: str) -> None:
    assert_field({"type": "string", "format": fmt}, good=[good], bad={rule: bad})


def test_unknown_format_fails_at_load() -> None:
    with pytest.raises(ValueError, match="unknown string format 'colour'"):
        field({"type": "string", "format": "colour"})


def test_integer_rejects_bools_and_enforces_bounds() -> None:
    assert_field({"type": "integer", "minimum": 1, "maximum": 5}, good=[1, 5],
                 bad={"below minimum 1": 0, "above maximum 5": 6, "must be an integer": True})
    assert_field({"type": "integer", "enum": [2, 4]}, good=[4], bad={"must be one of 2, 4": 3})
    assert_field({"type": "integer", "const": 7}, good=[7], bad={"must be 7": 8})
    assert_field({"type": "integer"}, good=[-3], bad={"must be an integer": 1.5})


def test_boolean_is_bool_only() -> None:
    assert_field({"type": "boolean"}, good=[True, False], bad={"must be a boolean": 1})
    assert_field({"type": "boolean", "const": True}, good=[True], bad={"must be true": False})


def test_bytes_and_cid_link_use_their_json_envelopes() -> None:
    assert_field({"type": "bytes", "maxLength": 5}, good=[{"$bytes": "aGVsbG8"}],  # "hello"
                 bad={"longer than 5 bytes": {"$bytes": "aGVsbG8h"}})
    assert_field({"type": "bytes"}, good=[{"$bytes": ""}],
                 bad={"must be {$bytes: base64}": {"$bytes": "not base64!"}})
    assert_field({"type": "cid-link"}, good=[{"$link": CID}],
                 bad={"must be {$link: cid}": CID})


def test_unknown_is_any_object() -> None:
    assert_field({"type": "unknown"}, good=[{}, {"$type": "x.y.z", "a": [1]}],
                 bad={"must be an object": "text"})


def test_blob_shape_accept_and_max_size() -> None:
    blob = {"$type": "blob", "ref": {"$link": CID}, "mimeType": "image/png", "size": 1000}
    legacy = {"cid": CID, "mimeType": "image/jpeg"}
    assert_field({"type": "blob", "accept": ["image/*"], "maxSize": 1000}, good=[blob, legacy], bad={
        "mimeType video/mp4 not accepted": {**blob, "mimeType": "video/mp4"},
        "size 1001 above maxSize 1000": {**blob, "size": 1001},
        "must be a blob": {**blob, "ref": CID},
    })
    assert_field({"type": "blob", "accept": ["image/png"]}, good=[blob],
                 bad={"mimeType image/jpeg not accepted": legacy})
    assert_field({"type": "blob", "accept": ["*/*"]}, good=[legacy], bad={"must be a blob": "x"})


def test_array_counts_items_and_locates_the_bad_one() -> None:
    assert_field({"type": "array", "minLength": 1, "maxLength": 2, "items": {"type": "integer"}},
                 good=[[1], [1, 2]], bad={"more than 2 items": [1, 2, 3], "fewer than 1 items": [],
                                          "must be an array": {"0": 1}})
    lex = field({"type": "array", "items": {"type": "integer"}})
    assert violation(lex, "test.lex.doc", {"f": [1, "2"]}) == "f[1]: must be an integer"


def test_refs_resolve_locally_by_fragment_and_by_bare_nsid() -> None:
    lex = Lexicons([
        {"lexicon": 1, "id": "test.lex.a", "defs": {
            "main": {"type": "object", "properties": {
                "local": {"type": "ref", "ref": "#inner"},
                "remote": {"type": "ref", "ref": "test.lex.b#thing"},
                "bare": {"type": "ref", "ref": "test.lex.b"}}},
            "inner": {"type": "integer"}}},
        {"lexicon": 1, "id": "test.lex.b", "defs": {
            "main": {"type": "string", "format": "did"}, "thing": {"type": "boolean"}}},
    ])
    lex.validate_value("test.lex.a", {"local": 1, "remote": True, "bare": "did:plc:x"})
    assert violation(lex, "test.lex.a#main", {"local": "1"}) == "local: must be an integer"
    assert violation(lex, "test.lex.a", {"remote": 1}) == "remote: must be a boolean"
    assert violation(lex, "test.lex.a", {"bare": "x"}) == "bare: must be a did"


def test_plain_ref_to_a_missing_def_fails_at_load() -> None:
    with pytest.raises(ValueError, match="ref to unknown def test.lex.doc#nope"):
        field({"type": "ref", "ref": "#nope"})


def test_token_refs_are_strings() -> None:
    lex = lexicons(main={"type": "object", "properties": {"k": {"type": "ref", "ref": "#flag"}}},
                   flag={"type": "token"})
    lex.validate_value("test.lex.doc", {"k": "test.lex.doc#flag"})
    assert violation(lex, "test.lex.doc", {"k": 1}) == "k: must be a string"


def test_union_dispatches_on_type_open_by_default() -> None:
    defs = {"a": {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}}
    open_lex = lexicons(main={"type": "object", "properties": {
        "u": {"type": "union", "refs": ["#a", "test.lex.other"]}}}, **defs)
    open_lex.validate_value("test.lex.doc", {"u": {"$type": "test.lex.doc#a", "n": 1}})
    open_lex.validate_value("test.lex.doc", {"u": {"$type": "some.other.thing", "x": 1}})
    assert violation(open_lex, "test.lex.doc", {"u": {"$type": "test.lex.doc#a"}}) == "u.n: required"
    assert violation(open_lex, "test.lex.doc", {"u": {"n": 1}}) == "u: must be an object with $type"
    assert violation(open_lex, "test.lex.doc", {"u": "x"}) == "u: must be an object with $type"
    closed_lex = lexicons(main={"type": "object", "properties": {
        "u": {"type": "union", "refs": ["#a"], "closed": True}}}, **defs)
    assert (violation(closed_lex, "test.lex.doc", {"u": {"$type": "x.y.z"}})
            == "u: $type x.y.z is not allowed in this closed union")


def test_union_type_naming_a_main_def_may_omit_the_fragment() -> None:
    post: dict[str, Any] = {
        "$type": "social.coves.community.post", "community": "did:plc:c", "author": "did:plc:a",
        "createdAt": "2025-01-09T14:30:00Z", "embed": {"images": [{"alt": "no image"}]}}
    for embed_type in ("social.coves.embed.images", "social.coves.embed.images#main"):
        post["embed"]["$type"] = embed_type
        with pytest.raises(RejectedEvent) as caught:
            load_default().validate_record("social.coves.community.post", post)
        assert caught.value.detail == "embed.images[0].image: required"


def test_paths_name_nested_fields() -> None:
    comment = {"$type": "social.coves.community.comment", "content": "hi",
               "createdAt": "2025-01-09T16:30:00Z",
               "reply": {"root": {"uri": POST_URI, "cid": CID}, "parent": {"uri": "nope", "cid": CID}}}
    with pytest.raises(RejectedEvent) as caught:
        load_default().validate_record("social.coves.community.comment", comment)
    assert caught.value.detail == "reply.parent.uri: must be an at-uri"
    post = {"$type": "social.coves.community.post", "community": "did:plc:c", "author": "did:plc:a",
            "createdAt": "2025-01-09T14:30:00Z", "title": "é" * 301}  # 602 bytes, 301 graphemes
    with pytest.raises(RejectedEvent) as caught:
        load_default().validate_record("social.coves.community.post", post)
    assert caught.value.detail == "title: longer than 300 graphemes"


def comment_view(uri: str = POST_URI) -> dict[str, Any]:
    return {"uri": uri, "cid": CID, "author": {"did": "did:plc:a", "handle": "a.example.com"},
            "record": {}, "post": {"uri": POST_URI, "cid": CID},
            "createdAt": "2025-01-09T16:30:00Z", "indexedAt": "2025-01-09T16:30:01Z",
            "stats": {"upvotes": 1, "downvotes": 0, "score": 1, "replyCount": 1}}


def test_validate_value_prefixes_the_given_path_and_follows_recursive_defs() -> None:
    lex, ref = load_default(), "social.coves.community.comment.defs#threadViewComment"
    reply = {"$type": ref, "comment": comment_view(), "replies": []}
    lex.validate_value(ref, {"comment": comment_view(), "replies": [reply]})
    reply["comment"] = comment_view(uri="bad")
    with pytest.raises(LexiconViolation) as caught:
        lex.validate_value(ref, {"comment": comment_view(), "replies": [reply]}, "comments[0]")
    assert caught.value.path == "comments[0].replies[0].comment.uri"
    assert caught.value.rule == "must be an at-uri"
    with pytest.raises(KeyError):
        lex.validate_value("social.coves.feed.getAll", {})  # an endpoint, not a value


def test_def_for_returns_the_raw_def() -> None:
    lex = load_default()
    assert lex.def_for("social.coves.feed.getAll")["type"] == "query"
    assert lex.def_for("social.coves.feed.defs#postRef")["required"] == ["cid", "uri"]
    with pytest.raises(KeyError):
        lex.def_for("social.coves.feed.defs#nothing")
    assert load_default() is lex


@given(st.text(alphabet=st.sampled_from("aé€👍\r\n\u0301"), max_size=12), st.integers(0, 40))
def test_length_shortcuts_agree_with_counting(text: str, limit: int) -> None:
    size = len(text.encode("utf-8"))
    graphemes = len(regex.findall(r"\X", text))
    assert (_max_bytes(limit)(text) is None) == (size <= limit)
    assert (_min_bytes(limit)(text) is None) == (size >= limit)
    assert (_max_graphemes(limit)(text) is None) == (graphemes <= limit)
    assert (_min_graphemes(limit)(text) is None) == (graphemes >= limit)


def refs_in(node: object, doc_id: str) -> Iterator[str]:
    """Every ref and union member under `node`, as `nsid#name`."""
    if isinstance(node, list):
        for item in node:
            yield from refs_in(item, doc_id)
    elif isinstance(node, dict):
        named = [node["ref"]] if node.get("type") == "ref" else []
        named += node["refs"] if node.get("type") == "union" else []
        for ref in named:
            ref = doc_id + ref if ref.startswith("#") else ref
            yield ref if "#" in ref else ref + "#main"
        for child in node.values():
            yield from refs_in(child, doc_id)


def test_every_lexicon_file_loads_and_every_ref_resolves() -> None:
    files = sorted(LEXICON_DIR.rglob("*.json"))
    assert len(files) >= 71
    lex, dangling = Lexicons.load(), set()
    for path in files:
        doc = json.loads(path.read_text())
        assert doc["lexicon"] == 1
        assert doc["id"] == path.relative_to(LEXICON_DIR).with_suffix("").as_posix().replace("/", ".")
        for ref in refs_in(doc, doc["id"]):
            try:
                lex.def_for(ref)
            except KeyError:
                dangling.add(ref)
    assert dangling == KNOWN_DANGLING


def reference_docs() -> dict[str, dict[str, Any]]:
    if not REFERENCE.is_dir():
        pytest.skip(f"{REFERENCE} not present: the comparison with Coves' lexicons needs it")
    docs = (json.loads(p.read_text()) for p in (REFERENCE / "lexicons").rglob("*.json"))
    return {doc["id"]: doc for doc in docs}


def facts(node: object) -> object:
    """A lexicon node without its prose, with `required` order ignored."""
    if isinstance(node, list):
        return [facts(item) for item in node]
    if not isinstance(node, dict):
        return node
    kept = {k: facts(v) for k, v in node.items() if not (k == "description" and isinstance(v, str))}
    if "required" in kept:
        kept["required"] = sorted(node["required"])
    return kept


def our_docs() -> dict[str, dict[str, Any]]:
    docs = (json.loads(p.read_text()) for p in LEXICON_DIR.rglob("*.json"))
    return {doc["id"]: doc for doc in docs}


def test_our_lexicons_cover_every_coves_nsid() -> None:
    assert set(reference_docs()) <= set(our_docs())


def test_our_lexicons_state_the_same_facts_as_coves() -> None:
    """Field names, types, required lists, formats, values and limits all match; prose may not."""
    reference, ours = reference_docs(), our_docs()
    # The 16 records are what the firehose checks; the other documents shape the API.
    mains = [doc["defs"].get("main", {}) for doc in reference.values()]
    assert sum(main.get("type") == "record" for main in mains) == 16
    mismatched = [nsid for nsid, doc in reference.items() if facts(ours[nsid]) != facts(doc)]
    assert mismatched == []


def sample_files(pattern: str) -> list[Path]:
    if not REFERENCE.is_dir():
        pytest.skip(f"{REFERENCE} not present: sample conformance needs it")
    return sorted((REFERENCE / "record-samples").rglob(pattern))


def test_valid_coves_samples_pass() -> None:
    files = sample_files("*-valid*.json")
    assert len(files) >= 15
    for path in files:
        record = json.loads(path.read_text())
        load_default().validate_record(record["$type"], record)


def test_invalid_coves_samples_fail_naming_a_field() -> None:
    files = sample_files("*-invalid*.json")
    assert len(files) >= 11
    for path in files:
        record = json.loads(path.read_text())
        with pytest.raises(RejectedEvent) as caught:
            load_default().validate_record(record["$type"], record)
        # The detail starts with the offending field: one the record has, or a required one it lacks.
        named = regex.split(r"[.\[:]", caught.value.detail)[0]
        schema = load_default().def_for(record["$type"])["record"]
        assert named in schema["properties"], (path.name, caught.value.detail)
    path = REFERENCE / "record-samples" / "community" / "subscription-invalid-visibility.json"
    subscription = json.loads(path.read_text())
    with pytest.raises(RejectedEvent, match="contentVisibility: above maximum 5"):
        load_default().validate_record(subscription["$type"], subscription)
