"""The API as operators run it: `coves api` and `coves run` processes on real sockets."""

from __future__ import annotations

import signal
import subprocess
import time

import httpx
import pytest

from tests.test_cli import COVES, ROOT, env, free_port

START_TIMEOUT_S = 30.0


def wait_healthy(url: str, process: subprocess.Popen[bytes]) -> httpx.Response:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
        try:
            return httpx.get(url + "/xrpc/_health", timeout=1.0)
        except httpx.TransportError:
            time.sleep(0.1)  # polling a port that is not open yet; no event to wait on
    raise AssertionError("the API never answered")


@pytest.mark.parametrize("command", ["api", "run"])
def test_command_serves_the_api_and_stops_cleanly_on_sigterm(database_url: str, command: str) -> None:
    port = free_port()
    process = subprocess.Popen([*COVES, command], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE,
                               env=env(DATABASE_URL=database_url, API_PORT=str(port)))
    try:
        url = f"http://127.0.0.1:{port}"
        assert wait_healthy(url, process).status_code == 200
        listing = httpx.get(url + "/xrpc/social.coves.community.list", params={"limit": 500})
        assert (listing.status_code, listing.json()) == (200, {"communities": []})
        metrics = httpx.get(url + "/metrics").text
        assert 'coves_api_requests_total{method="GET",route="social.coves.community.list"' in metrics
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
