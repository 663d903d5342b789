"""`make run`: serve the shipped mappings on this machine with one command.

Without ``TRACKDRIVE_BASE_URL`` the relay delivers to a local sandbox started
alongside it, which also plays the Graph API and HubSpot's CRM for the sources that
fetch their leads (``FACEBOOK_GRAPH_URL`` and ``HUBSPOT_API_URL``), and every
secret a mapping references but the environment lacks gets a throwaway demo value,
so a new user can post a sample at once. With
``TRACKDRIVE_BASE_URL`` set, nothing is invented: missing secrets fail closed.
"""
from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time

from relay.intake.lint import load_directory
from relay.settings import Settings, SettingsError

# The base URLs of the vendor APIs the shipped fetch sources read (each a ${NAME:-default} in
# its mapping); unset, `make run` points them at the sandbox's stand-ins.
VENDOR_API_URLS = ("FACEBOOK_GRAPH_URL", "HUBSPOT_API_URL")


def _demo_env(settings: Settings) -> dict[str, str]:
    sources, _ = load_directory(settings.mappings_dir)
    names = set().union(*(source.required_env() for source in sources.values())) if sources else set()
    return {name: f"demo-{name.lower()}" for name in sorted(names) if not settings.secret(name)}


def console_access(settings: Settings) -> dict[str, str]:
    """A demo admin token unless one is set, and the console's address printed with it."""
    port = settings.bind.rpartition(":")[2] or "8080"
    url = f"http://127.0.0.1:{port}/admin/login"
    given = settings.env.get(settings.admin_token_env, "").strip()
    if given:
        print(f"console: {url} (log in with ${settings.admin_token_env})", flush=True)
        return {}
    token = "demo-" + secrets.token_urlsafe(12)
    print(f"console: {url}  token: {token}  (a demo {settings.admin_token_env}; set your own to keep it)",
          flush=True)
    return {settings.admin_token_env: token}


def main() -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"relay: configuration error: {exc}", file=sys.stderr)
        return 2
    env = dict(settings.env)
    sandbox = None
    port = settings.sandbox_port
    if "TRACKDRIVE_BASE_URL" not in settings.env:
        env["TRACKDRIVE_BASE_URL"] = f"http://127.0.0.1:{port}"
        demo = _demo_env(settings)
        env.update(demo)
        stand_ins = {name: env["TRACKDRIVE_BASE_URL"] for name in VENDOR_API_URLS if name not in env}
        env.update(stand_ins)
        # The sandbox checks appsecret_proof with the same app secret the relay signs with.
        sandbox = subprocess.Popen([sys.executable, "-m", "relay", "sandbox", "--port", str(port),
                                    "--graph-app-secret-env", "FACEBOOK_APP_SECRET"], env=env)
        print(f"sandbox Trackdrive on http://127.0.0.1:{port} "
              f"(received calls: /_sandbox/received); demo secrets set for: {', '.join(demo) or 'none'}; "
              f"vendor APIs played by the sandbox: {', '.join(stand_ins) or 'none'}",
              flush=True)
        time.sleep(0.5)
    env.update(console_access(settings))
    os.makedirs("var", exist_ok=True)
    try:
        return subprocess.call([sys.executable, "-m", "relay", "serve"], env=env)
    except KeyboardInterrupt:
        return 0
    finally:
        if sandbox:
            sandbox.terminate()
            sandbox.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
