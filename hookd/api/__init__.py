"""`hookd serve`: the account admins' hooks REST API (the platform's v2 hooks API) and the Service
Hooks web console, on the database store.

    app.py        the Flask app factory: security headers, one log line per request, error pages
    context.py    what every route shares (settings, store, state database, Admin) and JSON answers
    server.py     waitress, sd_notify and signals around the app
    keys.py       API keys: created once, stored as SHA-256, looked up, revoked
    sessions.py   console sessions (server-side, hashed ids, rotated at sign-in) and CSRF tokens
    ratelimit.py  requests per key and hour, counted in the database (shared by every process)
    admin.py      what an account admin may do to their hooks: the API and the console both call it
    bodies.py     request bodies and console forms turned into store changes, with per-field problems
    paging.py     offset/limit/sort parameters and RFC 5988 Link headers
    hooks_api.py  the REST routes under /{account_id}/api
    console.py    the HTML routes; templates/ and static/ beside it
    openapi.py    /openapi.json
    errors.py     the API's error answers

Writes go through `SqlStore`, whose triggers bump the revision that every `hookd run` polls, so a
change reaches running workers within `subscriptions.poll_interval_s`. Pings and redeliveries go
through the broker (`hookd.targeted`), like the commands'.
"""
