"""The ingest baseline: a bare Flask endpoint that only inserts the body into SQLite.

Same durability as the relay's default (WAL, synchronous=FULL), so the comparison
shows what the relay's own work (auth, parsing, mapping, dedupe, the outbox row)
costs on top of one durable insert per request.
"""
from __future__ import annotations

import os
import sqlite3
import threading
import time

from flask import Flask, jsonify, request

DB_PATH = os.environ.get("BARE_DB", "var/bench-bare.db")
SYNCHRONOUS = os.environ.get("BARE_SYNCHRONOUS", "FULL")
_local = threading.local()


def connection() -> sqlite3.Connection:
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = sqlite3.connect(DB_PATH, isolation_level=None, timeout=5)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={SYNCHRONOUS}")
        conn.execute("CREATE TABLE IF NOT EXISTS leads (id INTEGER PRIMARY KEY, received_at REAL, body BLOB)")
        _local.conn = conn
    return conn


app = Flask(__name__)


@app.post("/lead")
def lead():
    conn = connection()
    conn.execute("BEGIN IMMEDIATE")
    cursor = conn.execute("INSERT INTO leads (received_at, body) VALUES (?, ?)", (time.time(), request.get_data()))
    conn.execute("COMMIT")
    return jsonify({"lead_id": cursor.lastrowid, "status": "queued"}), 202
