"""Identity: DID resolution, handle verification and communities' hostedBy checks.

    fetch.py        safe fetching of remote documents (https, limits, public addresses only)
    resolver.py     DID → DidDocument (did:plc via PLC, did:web), cached; used by API auth
    handles.py      handle → DID back-check (DNS TXT, https well-known; PDS in tests only)
    hosting.py      hostedBy did:web verification (eTLD+1, did.json), cached and rate-limited
    cache.py        TTL cache whose concurrent misses share one computation
    ratelimit.py    token bucket on trio's clock
    identities.py   one round of the handle resolver (identities rows)
    communities.py  one round of the host verifier (communities rows, unverified_host rejects)
    tasks.py        the two background loops the engine runs
    tools.py        build all of it from the Config
    errors.py       the error tree
"""

from __future__ import annotations

from .errors import (
    DidDocumentInvalid as DidDocumentInvalid,
    DidNotFound as DidNotFound,
    DidResolutionError as DidResolutionError,
    FetchError as FetchError,
    FetchFailed as FetchFailed,
    FetchRefused as FetchRefused,
    FetchTimeout as FetchTimeout,
    FetchTooLarge as FetchTooLarge,
    IdentityError as IdentityError,
)
from .fetch import Fetcher as Fetcher, open_fetcher as open_fetcher
from .handles import HandleCheck as HandleCheck, HandleStatus as HandleStatus
from .handles import HandleVerifier as HandleVerifier
from .hosting import HostCheck as HostCheck, HostVerifier as HostVerifier
from .resolver import DidDocument as DidDocument, DidResolver as DidResolver
from .tasks import run_handle_resolver as run_handle_resolver, run_host_verifier as run_host_verifier
from .tools import IdentityTools as IdentityTools, open_identity as open_identity
