"""relay.mapping runs offline: lint, test and preview import no web, HTTP or database code."""
from __future__ import annotations

import subprocess
import sys

FORBIDDEN = ("flask", "werkzeug", "requests", "urllib3", "gunicorn", "sqlite3", "psycopg", "psycopg_pool")
PROBE = f"""
import sys
import relay.mapping, relay.intake.testing, relay.mapping.httpfile, relay.mapping.lint
loaded = sorted({{name.split('.')[0] for name in sys.modules}} & set({FORBIDDEN!r}))
print(','.join(loaded))
"""


def test_the_mapping_package_imports_no_web_http_or_database_module() -> None:
    # A fresh interpreter: this test process has long imported Flask for other tests.
    loaded = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == ""
