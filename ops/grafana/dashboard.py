"""Builds ops/grafana/dashboards/coves.json, the provisionable Coves dashboard.

    python ops/grafana/dashboard.py     # rewrite the JSON (tests/test_ops.py checks it is current)

Panels are data (title, unit, PromQL queries) so the dashboard stays reviewable; every metric
name used here is checked against the ones the code registers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

OUT: Final = Path(__file__).resolve().parent / "dashboards" / "coves.json"
DATASOURCE: Final = {"type": "prometheus", "uid": "${datasource}"}

# (row title, [(panel title, unit, [(legend, expr), ...]), ...])
ROWS: Final = [
    ("API", [
        ("Requests per second by route", "reqps", [
            ("{{route}}", "sum by (route) (rate(coves_api_requests_total[$__rate_interval]))")]),
        ("Latency by route (p50 / p95 / p99)", "s", [
            ("p50 {{route}}", "histogram_quantile(0.5, sum by (le, route) "
                              "(rate(coves_api_request_duration_seconds_bucket[$__rate_interval])))"),
            ("p95 {{route}}", "histogram_quantile(0.95, sum by (le, route) "
                              "(rate(coves_api_request_duration_seconds_bucket[$__rate_interval])))"),
            ("p99 {{route}}", "histogram_quantile(0.99, sum by (le, route) "
                              "(rate(coves_api_request_duration_seconds_bucket[$__rate_interval])))")]),
        ("Errors by route and status", "reqps", [
            ("{{route}} {{status}}", 'sum by (route, status) '
                                     '(rate(coves_api_requests_total{status=~"[45].."}[$__rate_interval]))')]),
        ("Service-auth checks by outcome", "ops", [
            ("{{outcome}}", "sum by (outcome) (rate(coves_api_auth_verifications_total[$__rate_interval]))"),
            ("429 {{bucket}}", "sum by (bucket) (rate(coves_api_rate_limited_total[$__rate_interval]))")]),
        ("5xx share", "percentunit", [
            ("5xx", 'sum(rate(coves_api_requests_total{status=~"5.."}[$__rate_interval])) / '
                    'sum(rate(coves_api_requests_total[$__rate_interval]))')]),
    ]),
    ("Ingest", [
        ("Lag (now − last committed event)", "s", [
            ("{{source}}", "max by (source) (coves_ingest_lag_seconds)")]),
        ("Events per second", "ops", [
            ("received {{source}}", "sum by (source) (rate(coves_ingest_events_received_total[$__rate_interval]))"),
            ("applied {{source}}", "sum by (source) (rate(coves_ingest_events_applied_total[$__rate_interval]))")]),
        ("Applied by collection", "ops", [
            ("{{collection}} {{operation}}", "sum by (collection, operation) "
                                             "(rate(coves_ingest_events_applied_total[$__rate_interval]))")]),
        ("Rejects and skips by reason", "ops", [
            ("rejected {{reason}}", "sum by (reason) (rate(coves_ingest_events_rejected_total[$__rate_interval]))"),
            ("skipped {{reason}}", "sum by (reason) (rate(coves_ingest_events_skipped_total[$__rate_interval]))")]),
        ("Batch flush time (p50 / p99)", "s", [
            ("p50", "histogram_quantile(0.5, sum by (le) (rate(coves_ingest_batch_flush_seconds_bucket[$__rate_interval])))"),
            ("p99", "histogram_quantile(0.99, sum by (le) (rate(coves_ingest_batch_flush_seconds_bucket[$__rate_interval])))")]),
        ("Queue, reconnects, retries", "short", [
            ("queued batches {{source}}", "max by (source) (coves_ingest_queue_batches)"),
            ("reconnects {{reason}}", "sum by (reason) (increase(coves_ingest_reconnects_total[$__rate_interval]))"),
            ("batch retries", "sum(increase(coves_ingest_batch_retries_total[$__rate_interval]))")]),
    ]),
    ("Database", [
        ("Pool connections", "short", [
            ("{{pool}} {{state}}", "max by (pool, state) (coves_db_pool_connections)"),
            ("{{pool}} waiting", "max by (pool) (coves_db_pool_waiting)")]),
        ("Call duration (p50 / p99)", "s", [
            ("p50 {{pool}}", "histogram_quantile(0.5, sum by (le, pool) (rate(coves_db_query_seconds_bucket[$__rate_interval])))"),
            ("p99 {{pool}}", "histogram_quantile(0.99, sum by (le, pool) (rate(coves_db_query_seconds_bucket[$__rate_interval])))")]),
        ("Slow calls per second", "ops", [
            ("{{pool}}", "sum by (pool) (rate(coves_db_slow_queries_total[$__rate_interval]))")]),
    ]),
    ("PDS and breakers", [
        ("PDS calls by method and outcome", "ops", [
            ("{{method}} {{outcome}}", "sum by (method, outcome) (rate(coves_pds_calls_total[$__rate_interval]))")]),
        ("Breaker state (0 closed, 1 half-open, 2 open)", "short", [
            ("{{breaker}}", "max by (breaker) (coves_breaker_state)")]),
    ]),
]


def _panel(panel_id: int, title: str, unit: str, targets: list[tuple[str, str]], x: int, y: int) -> dict[str, Any]:
    return {
        "id": panel_id, "type": "timeseries", "title": title, "datasource": DATASOURCE,
        "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
        "targets": [{"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": expr,
                     "legendFormat": legend} for i, (legend, expr) in enumerate(targets)],
    }


def build() -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    y, panel_id = 0, 1
    for row_title, row_panels in ROWS:
        panels.append({"id": panel_id, "type": "row", "title": row_title, "collapsed": False,
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
        panel_id, y = panel_id + 1, y + 1
        for index, (title, unit, targets) in enumerate(row_panels):
            panels.append(_panel(panel_id, title, unit, targets, 12 * (index % 2), y + 8 * (index // 2)))
            panel_id += 1
        y += 8 * ((len(row_panels) + 1) // 2)
    return {
        "uid": "coves-appview", "title": "Coves AppView", "schemaVersion": 39, "version": 1,
        "tags": ["coves"], "timezone": "utc", "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [{"name": "datasource", "type": "datasource", "query": "prometheus",
                                 "label": "Prometheus"}]},
        "panels": panels,
    }


def render() -> str:
    return json.dumps(build(), indent=2) + "\n"


if __name__ == "__main__":
    OUT.write_text(render())
    print(f"wrote {OUT}")
