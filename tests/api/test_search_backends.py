"""Community search on both similarity backends (sql/functions/search.sql).

The embedded Postgres (pgserver) has no pg_trgm: the suite's database runs the plain score.
The trigram path needs a server with postgresql-contrib; this module starts a throwaway cluster
from the system's Postgres binaries (Debian: /usr/lib/postgresql/<v>/bin) when they and
pg_trgm are installed, and skips with the reason otherwise (CI images without them).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from api.app import create_app
from engine.db import Database, open_database
from engine.migrate import apply_migrations
from engine.pipeline import open_writer_database
from tests import factories as f
from tests.helpers import ingest

from .conftest import api_config, get_json
from .keys import KeyResolver

SEARCH = "/xrpc/social.coves.community.search"


def _system_postgres() -> tuple[Path, str] | None:
    """(bin dir, version) of a system Postgres that ships pg_trgm, if any."""
    for bin_dir in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        version = bin_dir.parent.name
        if ((bin_dir / "initdb").exists()
                and Path(f"/usr/share/postgresql/{version}/extension/pg_trgm.control").exists()):
            return bin_dir, version
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def contrib_postgres_url() -> Iterator[str]:
    found = _system_postgres()
    if found is None:
        pytest.skip("no system Postgres with pg_trgm (postgresql-contrib) installed")
    bin_dir, _version = found
    root = Path(tempfile.mkdtemp(prefix="coves-trgm-"))
    as_owner: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root: run the cluster as the postgres user
        shutil.chown(root, "postgres")
        as_owner = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", _free_port()
    subprocess.run([*as_owner, str(bin_dir / "initdb"), "-D", str(data), "-U", "coves",
                    "--auth=trust"], check=True, capture_output=True)
    subprocess.run([*as_owner, str(bin_dir / "pg_ctl"), "-D", str(data), "-w", "-l",
                    str(root / "log"), "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1",
                    "start"], check=True, capture_output=True)
    try:
        yield f"postgresql://coves@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_owner, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate",
                        "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def trgm_db(bridge: None, contrib_postgres_url: str) -> AsyncIterator[Database]:
    async with open_database(contrib_postgres_url) as admin:
        await admin.execute("DROP SCHEMA public CASCADE")
        await admin.execute("CREATE SCHEMA public")
        await apply_migrations(admin)
        yield admin


async def _search(db: Database, url: str, q: str) -> list[str]:
    app = create_app(api_config(), db, KeyResolver())
    async with app.test_app() as test_app:
        _status, body = await get_json(test_app.test_client(), SEARCH, q=q)
    return [item["name"] for item in body["communities"]]


async def test_trigram_backend_ranks_by_similarity_and_forgives_typos(
        trgm_db: Database, contrib_postgres_url: str) -> None:
    assert await trgm_db.fetchval("SELECT coves_search_backend()") == "trigram"
    names = ["photography", "photos", "biology", "film photography club", "cooking"]
    async with open_writer_database(contrib_postgres_url) as writer:
        await ingest(writer, [f.profile(f.did(name.replace(" ", "")), name=name) for name in names])
    found = await _search(trgm_db, contrib_postgres_url, "photography")
    assert found[0] == "photography" and set(found) >= {"photography", "film photography club"}
    assert "cooking" not in found
    assert "photography" in await _search(trgm_db, contrib_postgres_url, "photografy")


async def test_plain_backend_is_the_embedded_default(db: Database) -> None:
    assert await db.fetchval("SELECT coves_search_backend()") == "plain"
    assert await db.fetchval("SELECT coves_text_similarity('cats', 'cats')") == 1
    assert await db.fetchval("SELECT coves_text_similarity('dogs', 'cats')") == 0
