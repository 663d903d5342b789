"""A whole relay on this machine: the sandbox as Trackdrive plus `relay serve`, both real processes."""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import requests

from tests.support.procs import ROOT, Process, free_port, gunicorn, sandbox

SHIPPED_MAPPINGS = ROOT / "mappings"
SIGNING_SECRET = "heldout-test-secret"  # what the recorded vendor samples are signed with

# Made-up values for every secret the shipped mappings reference; long enough to find in logs.
SHIPPED_SECRETS = {
    "FACEBOOK_LEAD_LEAD_TOKEN": "fb-lead-token-5f1c9a7e", "FACEBOOK_LEADGEN_LEAD_TOKEN": "fb-leadgen-token-0b3d",
    "FACEBOOK_APP_SECRET": SIGNING_SECRET, "FACEBOOK_VERIFY_TOKEN": "fb-verify-token-77aa",
    "TYPEFORM_LEAD_TOKEN": "typeform-token-c4e2d1", "TYPEFORM_SECRET": SIGNING_SECRET,
    "UNBOUNCE_LEAD_TOKEN": "unbounce-token-9d8e7f",
    "LEADSPEDIA_LEAD_TOKEN": "leadspedia-token-1a2b3c", "LEADSPEDIA_CAMPAIGN_KEY": "Xk7RmP2tQ9vWc4Ln8Hd3",
    "GENERIC_JSON_LEAD_TOKEN": "generic-json-token-6e5d", "GENERIC_JSON_API_KEY": "example-key",
    "GENERIC_FORM_LEAD_TOKEN": "generic-form-token-4c3b", "GENERIC_FORM_KEY": "example-key",
    "GOOGLE_ADS_LEAD_TOKEN": "google-ads-token-3e7a1c", "GOOGLE_ADS_KEY": "hk-9f2c4e71b0a3",
    "JOTFORM_LEAD_TOKEN": "jotform-token-8b2d4f", "JOTFORM_WEBHOOK_KEY": "jotform-key-6c1a93",
    "ELEMENTOR_LEAD_TOKEN": "elementor-token-5a9e2b", "ELEMENTOR_WEBHOOK_KEY": "elementor-key-0d4f7e",
    "GRAVITY_FORMS_LEAD_TOKEN": "gravity-forms-token-7f3c", "GRAVITY_FORMS_API_KEY": "gravity-key-2b8e51",
    "HUBSPOT_LEAD_TOKEN": "hubspot-token-4d6a0e", "HUBSPOT_CLIENT_SECRET": SIGNING_SECRET,
    "HUBSPOT_WEBHOOK_URL": "https://leads.example.com/webhooks/hubspot",  # the URL the sample was signed for
    "TALLY_LEAD_TOKEN": "tally-token-9c5b3a", "TALLY_SIGNING_SECRET": SIGNING_SECRET,
    "LEADCONDUIT_LEAD_TOKEN": "leadconduit-token-1e8f", "LEADCONDUIT_WEBHOOK_KEY": "leadconduit-key-3a7d29",
    "BOBERDOO_LEAD_TOKEN": "boberdoo-token-6f2e", "BOBERDOO_PING_LEAD_TOKEN": "boberdoo-ping-token-8a1c",
    "BOBERDOO_KEY": "Zq4Wm8Rt2Yp6Kx0Ns3Lv7Bd1Hc5Jf9Ga",
    "WPFORMS_LEAD_TOKEN": "wpforms-token-3b9d7c", "WPFORMS_API_KEY": "wpforms-key-2d8f41",
    "CONTACT_FORM_7_LEAD_TOKEN": "cf7-token-5e0a6b", "CONTACT_FORM_7_KEY": "cf7-key-7a3e09",
    "FORMSTACK_LEAD_TOKEN": "formstack-token-2c7f9d", "FORMSTACK_HANDSHAKE_KEY": "formstack-handshake-5c1e",
    "ZAPIER_LEAD_TOKEN": "zapier-token-0f6b3e", "ZAPIER_API_KEY": "zapier-key-91b0c4",
    "INSTAPAGE_LEAD_TOKEN": "instapage-token-7d2a5c", "INSTAPAGE_KEY": "instapage-key-4e2a77",
    "FACEBOOK_PAGE_TOKEN": "fb-page-token-EAAB12cd34", "HUBSPOT_CONTACTS_LEAD_TOKEN": "hubspot-token-8f7e",
    "HUBSPOT_PRIVATE_APP_TOKEN": "pat-na1-hubspot-3c2b1a", "HUBSPOT_WEBHOOK_KEY": "hubspot-key-5d4c",
}
# The sandbox plays the Graph API: it accepts this page token and checks appsecret_proof.
VENDOR_SANDBOX_ARGS = ("--graph-tokens", SHIPPED_SECRETS["FACEBOOK_PAGE_TOKEN"],
                       "--graph-app-secret-env", "FACEBOOK_APP_SECRET",
                       "--hubspot-tokens", SHIPPED_SECRETS["HUBSPOT_PRIVATE_APP_TOKEN"])

# Admin endpoints and the console are off without a token: every stack has one (a test may override it).
STACK_ADMIN_TOKEN = "stack-admin-token-4f7e1c2b9a"

WAIT_S = 60.0  # an upper bound for a slow machine, never a measurement


def wait_until(predicate: Callable[[], Any], timeout_s: float = WAIT_S, interval_s: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval_s)


@dataclass
class Stack:
    workdir: Path
    env_overrides: dict[str, str] = field(default_factory=dict)
    sandbox_args: tuple[str, ...] = ()
    workers: int = 2
    relay_port: int = field(default_factory=free_port)
    sandbox_port: int = field(default_factory=free_port)
    relay: Process | None = None
    trackdrive: Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.relay_port}"

    @property
    def sandbox_url(self) -> str:
        return f"http://127.0.0.1:{self.sandbox_port}"

    @property
    def mappings_dir(self) -> Path:
        return self.workdir / "mappings"

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.workdir / 'relay.db'}"

    def env(self) -> dict[str, str]:
        return {**SHIPPED_SECRETS, "RELAY_ADMIN_TOKEN": STACK_ADMIN_TOKEN, "RELAY_DATABASE_URL": self.database_url,
                "RELAY_MAPPINGS_DIR": str(self.mappings_dir), "TRACKDRIVE_BASE_URL": self.sandbox_url,
                "FACEBOOK_GRAPH_URL": self.sandbox_url, "HUBSPOT_API_URL": self.sandbox_url,
                "RELAY_POLL_INTERVAL": "0.2", "RELAY_GRACEFUL_TIMEOUT": "5", "RELAY_DRAIN_SECONDS": "0",
                **self.env_overrides}

    def start(self) -> Stack:
        if not self.mappings_dir.exists():
            shutil.copytree(SHIPPED_MAPPINGS, self.mappings_dir)
        self.trackdrive = sandbox(self.sandbox_port, self.workdir / "sandbox.log", *VENDOR_SANDBOX_ARGS,
                                  *self.sandbox_args, env={"FACEBOOK_APP_SECRET": SIGNING_SECRET}).start()
        self.trackdrive.wait_http(f"{self.sandbox_url}/_sandbox/stats")
        self.start_relay()
        return self

    def start_relay(self) -> None:
        self.relay = gunicorn(self.relay_port, self.workdir / "relay.log", self.env(), workers=self.workers).start()
        self.relay.wait_http(f"{self.url}/healthz")

    def stop(self) -> None:
        for process in (self.relay, self.trackdrive):
            if process:
                process.stop()

    @property
    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.env()['RELAY_ADMIN_TOKEN']}"}

    def post_leads(self, prefix: str, count: int) -> list[str]:
        """Post ``count`` distinct leads to the shipped generic-json source; the relay's lead ids."""
        headers = {"X-Api-Key": SHIPPED_SECRETS["GENERIC_JSON_API_KEY"]}
        lead_ids = []
        for n in range(count):
            answer = requests.post(f"{self.url}/hooks/generic-json", headers=headers, timeout=30,
                                   json={"lead_id": f"{prefix}-{n}", "phone": f"(512) 201-{n:04d}"})
            assert answer.status_code == 202, answer.text
            lead_ids.append(answer.json()["lead_id"])
        return lead_ids

    def received(self) -> list[dict[str, Any]]:
        return requests.get(f"{self.sandbox_url}/_sandbox/received", timeout=10).json()

    def sandbox_stats(self) -> dict[str, Any]:
        return requests.get(f"{self.sandbox_url}/_sandbox/stats", timeout=10).json()

    def set_behaviour(self, **changes: Any) -> None:
        requests.post(f"{self.sandbox_url}/_sandbox/behaviour", json=changes, timeout=10).raise_for_status()

    def set_vendors(self, **changes: Any) -> None:
        requests.post(f"{self.sandbox_url}/_sandbox/vendors", json=changes, timeout=10).raise_for_status()

    def logs(self) -> str:
        return "".join(p.log() for p in (self.relay, self.trackdrive) if p)
