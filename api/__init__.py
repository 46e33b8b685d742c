"""The XRPC API: Coves' read queries served from the indexed tables (Quart-Trio on Hypercorn),
and the few writes that go through the AppView (communities, posts, images; see writes.py).

app.py assembles it (`create_app`), server.py serves it (`serve_api`), xrpc.py dispatches each
`/xrpc/<nsid>`; one module per NSID group declares its queries, views/ holds the SQL that builds
every response.
"""
