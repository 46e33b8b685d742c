"""Errors of identity work: fetching remote documents, resolving DIDs, checking handles.

    IdentityError(EngineError)
    ├── FetchError             a remote document could not be fetched (the `url` is kept)
    │   ├── FetchRefused       we would not connect: private/loopback target, or not https
    │   ├── FetchTimeout       no complete answer within the time allowed
    │   ├── FetchTooLarge      the body is larger than the cap
    │   └── FetchFailed        the remote side failed: HTTP status, bad JSON, network error
    └── DidResolutionError     a DID could not be turned into a valid DID document
        ├── DidNotFound        the directory or host says there is no such DID (HTTP 404/410)
        └── DidDocumentInvalid the document is malformed, or its `id` is another DID

httpx/httpcore, socket and DNS errors are translated where they enter (fetch.py, handles.py);
callers see only these. A resolution error keeps the fetch error behind it as `__cause__`.
"""

from __future__ import annotations

from ..errors import EngineError

__all__ = [
    "DidDocumentInvalid", "DidNotFound", "DidResolutionError", "FetchError", "FetchFailed",
    "FetchRefused", "FetchTimeout", "FetchTooLarge", "IdentityError",
]


class IdentityError(EngineError):
    """Base class of identity errors."""


class FetchError(IdentityError):
    """A remote document could not be fetched.

    Attributes:
        url: the URL asked for (the first one, before redirects).
        outcome: a short metric label (refused, timeout, too_large, failed).
        transient: the same fetch may well work soon (timeout, 5xx, network trouble), as
            opposed to an answer that will stand (404, refused target, oversized body).
    """

    outcome = "failed"
    transient = False

    def __init__(self, url: str, message: str) -> None:
        super().__init__(f"{url}: {message}")
        self.url = url


class FetchRefused(FetchError):
    """We refused to connect: the target is private, loopback, link-local, … or not https."""

    outcome = "refused"


class FetchTimeout(FetchError):
    """The whole fetch (name lookup, connect, redirects, body) took longer than allowed."""

    outcome = "timeout"
    transient = True


class FetchTooLarge(FetchError):
    """The body is larger than the cap (announced by Content-Length, or read past it)."""

    outcome = "too_large"


class FetchFailed(FetchError):
    """The remote side failed: an HTTP error status, a body that is not JSON, a network error.

    Attributes:
        status: the HTTP status when the server answered, else None.
    """

    def __init__(self, url: str, message: str, *, status: int | None = None,
                 transient: bool | None = None) -> None:
        super().__init__(url, message)
        self.status = status
        # Default: no answer (network) or 429/5xx may pass; any other answer stands.
        self.transient = (status is None or status == 429 or status >= 500
                          if transient is None else transient)


class DidResolutionError(IdentityError):
    """The DID could not be resolved to a valid document (transient or not; see subclasses)."""

    def __init__(self, did: str, message: str) -> None:
        super().__init__(f"{did}: {message}")
        self.did = did


class DidNotFound(DidResolutionError):
    """The PLC directory or the did:web host answered that the DID does not exist."""


class DidDocumentInvalid(DidResolutionError):
    """The document is not a valid DID document for this DID (malformed, or `id` differs)."""
