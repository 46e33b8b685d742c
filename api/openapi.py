"""An OpenAPI 3.1 document of the XRPC API, generated from our lexicons.

Every served query (aliases too) becomes `GET /xrpc/<nsid>`: its parameters from the lexicon's
`params` def (arrays as repeated keys: form style, exploded), its 200 body from the `output`
schema; every procedure becomes `POST /xrpc/<nsid>` with its `input` schema as the JSON request
body (a blob upload: raw bytes of the accepted image types), with every lexicon def it references under `components.schemas` (`social.coves.feed.defs
#feedViewPost` → `social.coves.feed.defs.feedViewPost`). Open unions become plain objects (any
`$type` may appear); lengths are left out (lexicons count bytes and graphemes, JSON Schema
counts code points). Served at /openapi.json; `coves openapi --out FILE` writes it, and the
copy at api/openapi.json is checked to be current by the tests.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from quart import Blueprint, Response

from engine.config import Config
from engine.lexicon import Lexicons, load_default

from .params import Param
from .xrpc import XrpcRouter

__all__ = ["COMMITTED", "blueprint", "build_openapi", "render_openapi", "write_openapi"]

COMMITTED: Final = Path(__file__).resolve().parent / "openapi.json"
API_VERSION: Final = "0.1.0"
# Lexicon string formats with a JSON Schema / OpenAPI name of their own.
_FORMATS: Final = {"datetime": "date-time", "uri": "uri"}
_ERRORS: Final = {
    "400": "Invalid parameter or cursor (InvalidRequest, InvalidCursor)",
    "401": "Missing or invalid service-auth token (AuthenticationRequired, InvalidToken, ExpiredToken)",
    "404": "Subject not found, or unknown method (NotFound, MethodNotImplemented, …)",
    "429": "Rate limit exceeded (RateLimitExceeded); see the RateLimit-* and Retry-After headers",
    "503": "Database unreachable (ServiceUnavailable)",
}
# Procedures answer these as well.
_WRITE_ERRORS: Final = {
    "400": "Invalid input, a content rule, or a client-written record (InvalidRequest, "
           "ContentRuleViolation, InvalidContent, InvalidName, InvalidBlob, InvalidMimeType, "
           "WriteToYourPDS)",
    "403": "Authenticated, but not allowed (NotAuthorized)",
    "409": "Lost a race (NameTaken, InvalidSwap)",
    "413": "Request body too large (PayloadTooLarge, BlobTooLarge)",
    "502": "The PDS failed (UpstreamFailure); nothing was written",
    "503": "The PDS or the database is unavailable (PdsUnavailable, ServiceUnavailable); "
           "nothing was written",
}


def _name(ref: str) -> str:
    return ref.replace("#", ".")


class _Converter:
    """Lexicon nodes → JSON Schema, collecting every referenced def as a component."""

    def __init__(self, lexicons: Lexicons) -> None:
        self.lexicons = lexicons
        self.components: dict[str, Any] = {}

    def ref(self, ref: str, doc_id: str) -> dict[str, Any]:
        full = doc_id + ref if ref.startswith("#") else (ref if "#" in ref else ref + "#main")
        name = _name(full)
        if name not in self.components:
            self.components[name] = {}  # placeholder: recursive defs (threads) refer to themselves
            try:
                defn = self.lexicons.def_for(full)
            except KeyError:
                self.components[name] = {"type": "object",
                                         "description": f"{full} (not published in our lexicons)"}
            else:
                node = defn["record"] if defn.get("type") == "record" else defn
                self.components[name] = self.node(node, full.partition("#")[0])
        return {"$ref": f"#/components/schemas/{name}"}

    def node(self, node: Mapping[str, Any], doc_id: str) -> dict[str, Any]:
        kind = node.get("type")
        out: dict[str, Any]
        if kind in ("object", "params"):
            out = {"type": "object", "properties": {
                name: self.node(sub, doc_id) for name, sub in sorted(node.get("properties", {}).items())}}
            if node.get("required"):
                out["required"] = sorted(node["required"])
        elif kind == "array":
            out = {"type": "array", "items": self.node(node["items"], doc_id)}
        elif kind == "ref":
            return self.ref(node["ref"], doc_id)
        elif kind == "union":
            refs = sorted(node.get("refs", ()))
            out = {"type": "object", "description": "One of: " + ", ".join(refs)}
        elif kind == "string":
            out = {"type": "string"}
            if "format" in node:
                out["format"] = _FORMATS.get(node["format"], node["format"])
            if "enum" in node:
                out["enum"] = list(node["enum"])
        elif kind in ("integer", "boolean"):
            out = {"type": kind}
            for bound in ("minimum", "maximum"):
                if bound in node:
                    out[bound] = node[bound]
        elif kind in ("blob", "cid-link", "bytes"):
            out = {"type": "object"}
        else:  # unknown
            out = {}
        if node.get("description"):
            out["description"] = node["description"]
        return out


def _parameter(param: Param) -> dict[str, Any]:
    leaf: dict[str, Any] = {"type": param.item_type or param.type}
    if param.format is not None:
        leaf["format"] = _FORMATS.get(param.format.name, param.format.name)
    if param.choices is not None:
        leaf["enum"] = sorted(param.choices)
    if param.minimum is not None:
        leaf["minimum"] = param.minimum
    if param.maximum is not None:
        leaf["description"] = f"Values above {param.maximum} are clamped to it."
    schema: dict[str, Any] = leaf
    if param.type == "array":
        schema = {"type": "array", "items": leaf}
        if param.max_length is not None:
            schema["maxItems"] = param.max_length
    if param.default is not None:
        schema["default"] = param.default
    return {"name": param.name, "in": "query", "required": param.required, "schema": schema,
            "style": "form", "explode": True}


def _error_responses(extra: Mapping[str, str] | None = None) -> dict[str, Any]:
    errors = {**_ERRORS, **(extra or {})}
    return {status: {"description": text, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/XrpcError"}}}} for status, text in sorted(errors.items())}


def _request_body(defn: Mapping[str, Any], nsid: str, convert: _Converter) -> dict[str, Any] | None:
    declared = defn.get("input") or {}
    schema = declared.get("schema")
    if schema is not None:
        return {"required": True, "content": {"application/json": {
            "schema": convert.node(schema, nsid)}}}
    if declared.get("encoding"):
        binary = {"schema": {"type": "string", "format": "binary"}}
        return {"required": True, "content": {kind: binary for kind in
                                              ("image/jpeg", "image/png", "image/webp")}}
    return None


def build_openapi(router: XrpcRouter, lexicons: Lexicons) -> dict[str, Any]:
    """The OpenAPI document of every method `router` serves."""
    convert = _Converter(lexicons)
    paths: dict[str, Any] = {}
    for nsid in sorted(router.methods):
        method = router.methods[nsid]
        defn = lexicons.def_for(method.nsid)
        output = defn.get("output", {}).get("schema")
        body = convert.node(output, method.nsid) if output else {"type": "object"}
        operation: dict[str, Any] = {
            "operationId": nsid,
            "summary": defn.get("description", nsid),
            "parameters": [_parameter(param) for param in method.params.params],
            "responses": {"200": {"description": "OK", "content": {"application/json": {
                "schema": body}}}, **_error_responses(
                    _WRITE_ERRORS if method.kind == "procedure" else None)},
        }
        request_body = _request_body(defn, method.nsid, convert) if method.kind == "procedure" else None
        if request_body is not None:
            operation["requestBody"] = request_body
        if nsid != method.nsid:
            operation["description"] = f"Alias of {method.nsid} (the route Coves' server uses)."
        if method.auth != "none":
            operation["security"] = ([{"serviceAuth": []}] if method.auth == "required"
                                     else [{}, {"serviceAuth": []}])
        paths[f"/xrpc/{nsid}"] = {"get" if method.kind == "query" else "post": operation}
    paths["/xrpc/_health"] = {"get": {"operationId": "_health", "summary": "Health of the API and ingestion",
                                      "responses": {"200": {"description": "Healthy"},
                                                    "503": {"description": "Database unreachable or ingestion lagging"}}}}
    paths["/.well-known/did.json"] = {"get": {"operationId": "didDocument",
                                              "summary": "This AppView's did:web document",
                                              "responses": {"200": {"description": "DID document"},
                                                            "404": {"description": "INSTANCE_DID is not a did:web"}}}}
    schemas = dict(sorted(convert.components.items()))
    schemas["XrpcError"] = {"type": "object", "required": ["error", "message"], "properties": {
        "error": {"type": "string"}, "message": {"type": "string"}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Coves AppView XRPC API", "version": API_VERSION,
                 "description": "XRPC API of the Coves forum (reads, and the writes that go "
                                "through the AppView), generated from its lexicons."},
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {"serviceAuth": {
            "type": "http", "scheme": "bearer", "bearerFormat": "atproto service-auth JWT"}}},
    }


def render_openapi(document: Mapping[str, Any]) -> str:
    """The document as the stable text that is committed and served."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def blueprint(router: XrpcRouter, lexicons: Lexicons) -> Blueprint:
    """GET /openapi.json."""
    openapi = Blueprint("openapi", __name__)
    payload = render_openapi(build_openapi(router, lexicons)).encode()

    @openapi.get("/openapi.json")
    async def document() -> Response:
        return Response(payload, content_type="application/json")

    return openapi


def write_openapi(config: Config, out: Path | None) -> str:
    """`coves openapi [--out FILE]`: the document's text, also written to `out` when given."""
    from .app import build_router

    lexicons = load_default()
    text = render_openapi(build_openapi(build_router(config, lexicons), lexicons))
    if out is not None:
        out.write_text(text, encoding="utf-8")
    return text
