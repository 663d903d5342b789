"""Each signature preset against its vendor's published example, and the checks' failure names."""
from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from relay.errors import Unauthorized
from relay.intake.auth import SignedRequest, check_signature, sign
from relay.mapping.signatures import PRESETS, Part, SignatureSpec


def spec(preset: str, **changes: object) -> SignatureSpec:
    return SignatureSpec(secret_envs=("SECRET",), **{**PRESETS[preset], **changes})


def request(headers: dict[str, str], body: bytes, *, method: str = "POST", url: str = "",
            query: str = "") -> SignedRequest:
    lowered = {name.lower(): value for name, value in headers.items()}
    return SignedRequest(method, url, "", query, Lookup(lowered), body)


class Lookup(dict):  # type: ignore[type-arg]
    def get(self, key, default=None):  # type: ignore[no-untyped-def, override]
        return super().get(key.lower(), default)


def passes(preset: str, secret: str, headers: dict[str, str], body: bytes, now: float, **kw: str) -> None:
    check_signature(spec(preset), request(headers, body, **kw), {"SECRET": secret}, now)


def refused(preset: str, secret: str, headers: dict[str, str], body: bytes, now: float, **kw: str) -> str:
    with pytest.raises(Unauthorized) as caught:
        passes(preset, secret, headers, body, now, **kw)
    assert secret not in caught.value.message
    return str(caught.value.details["check"])


# --- published vectors ------------------------------------------------------------------

def test_github_documented_test_values():
    # docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries#testing-the-webhook-payload-validation
    headers = {"X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"}
    passes("github", "It's a Secret to Everybody", headers, b"Hello, World!", 0)
    assert refused("github", "It's a Secret to Everybody", headers, b"Hello, World?", 0) == "signature"


SLACK_BODY = (b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
              b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
              b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIG"
              b"lgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c")
SLACK_HEADERS = {"X-Slack-Request-Timestamp": "1531420618",
                 "X-Slack-Signature": "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"}


def test_slack_documented_example():
    # api.slack.com/authentication/verifying-requests-from-slack ("Step-by-step walk-through")
    secret = "8f742231b10e8888abcd99yyyzzz85a5"
    passes("slack", secret, SLACK_HEADERS, SLACK_BODY, 1531420618 + 60)
    assert refused("slack", secret, SLACK_HEADERS, SLACK_BODY, 1531420618 + 301) == "signature_stale"
    assert refused("slack", secret, SLACK_HEADERS, SLACK_BODY, 1531420618 - 301) == "signature_stale"
    no_time = {"X-Slack-Signature": SLACK_HEADERS["X-Slack-Signature"]}
    assert refused("slack", secret, no_time, SLACK_BODY, 1531420618) == "timestamp_missing"


def test_standard_webhooks_reference_vector():
    # github.com/standard-webhooks/standard-webhooks, the reference libraries' shared test vector
    headers = {"webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek", "webhook-timestamp": "1614265330",
               "webhook-signature": "v1,bm9ldHUjKzFob2VudXRob2VodWUzMjRvdWVvdW9ldQo= "
                                    "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    passes("standard_webhooks", secret, headers, b'{"test": 2432232314}', 1614265330)
    tampered = {**headers, "webhook-id": "msg_other"}
    assert refused("standard_webhooks", secret, tampered, b'{"test": 2432232314}', 1614265330) == "signature"


HUBSPOT_SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"


def test_hubspot_v1_documented_example():
    # developers.hubspot.com/docs/api/webhooks/validating-requests ("Example for a v1 signature")
    body = (b'[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,'
            b'"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM",'
            b'"changeFlag":"NEW","appId":54321}]')
    headers = {"X-HubSpot-Signature": "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de"}
    passes("hubspot_v1", HUBSPOT_SECRET, headers, body, 0)


def test_hubspot_v2_documented_example():
    # same page, "Example for a v2 signature": POST https://www.example.com/webhook_uri
    headers = {"X-HubSpot-Signature": "9569219f8ba981ffa6f6f16aa0f48637d35d728c7e4d93d0d52efaa512af7900"}
    body = b'{"example_field":"example_value"}'
    passes("hubspot_v2", HUBSPOT_SECRET, headers, body, 0, url="https://www.example.com/webhook_uri")
    assert refused("hubspot_v2", HUBSPOT_SECRET, headers, body, 0, method="PUT",
                   url="https://www.example.com/webhook_uri") == "signature"


# --- schemes without a published vector: computed here as each vendor's page describes --------

def b64_hmac(secret: bytes, message: bytes) -> str:
    return base64.b64encode(hmac.new(secret, message, hashlib.sha256).digest()).decode()


def test_hubspot_v3_signs_method_url_body_and_milliseconds():
    body, url, ms = b'[{"objectId":1}]', "https://relay.example.com/hooks/hubspot", "1700000000123"
    headers = {"X-HubSpot-Request-Timestamp": ms,
               "X-HubSpot-Signature-v3": b64_hmac(b"s3cret", b"POST" + url.encode() + body + ms.encode())}
    passes("hubspot_v3", "s3cret", headers, body, 1700000000.123 + 200, url=url)
    assert refused("hubspot_v3", "s3cret", headers, body, 1700000000.123 + 400, url=url) == "signature_stale"


def test_stripe_list_format_with_several_signatures():
    # docs.stripe.com/webhooks#verify-manually: signed payload "{t}.{body}", v1 = hex HMAC-SHA256
    body, stamp = b'{"id":"evt_1","object":"event"}', "1492774577"
    good = hmac.new(b"whsec_test", stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    header = f"t={stamp},v1={'0' * 64},v1={good},v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39"
    passes("stripe", "whsec_test", {"Stripe-Signature": header}, body, 1492774577)
    assert refused("stripe", "whsec_test", {"Stripe-Signature": header}, body + b" ", 1492774577) == "signature"
    assert refused("stripe", "whsec_test", {"Stripe-Signature": f"v1={good}"}, body, 1492774577) \
        == "timestamp_missing"
    assert refused("stripe", "whsec_test", {"Stripe-Signature": header}, body, 1492774577 + 600) \
        == "signature_stale"


@pytest.mark.parametrize("preset,header,prefix", [("shopify", "X-Shopify-Hmac-Sha256", ""),
                                                  ("tally", "Tally-Signature", ""),
                                                  ("typeform", "Typeform-Signature", "sha256=")])
def test_base64_body_schemes(preset, header, prefix):
    body = b'{"lead":"x"}'
    headers = {header: prefix + b64_hmac(b"k", body)}
    passes(preset, "k", headers, body, 0)
    assert refused(preset, "k", headers, b'{"lead":"y"}', 0) == "signature"
    assert refused(preset, "k", {}, body, 0) == "signature_missing"


def test_meta_hex_with_prefix_and_rotation():
    body = b'{"entry":[]}'
    headers = {"X-Hub-Signature-256": "sha256=" + hmac.new(b"new", body, hashlib.sha256).hexdigest().upper()}
    rotating = SignatureSpec(secret_envs=("OLD", "NEW"), **PRESETS["meta"])
    check_signature(rotating, request(headers, body), {"OLD": "old", "NEW": "new"}, 0)


def test_every_preset_signs_and_verifies_its_own_request():
    """sign() (used by ``sign: true`` cases) and check_signature agree for every preset."""
    env = {"SECRET": "whsec_" + base64.b64encode(b"0123456789abcdef").decode()}
    for name in PRESETS:
        chosen = spec(name)
        plain = request({"webhook-id": "msg_1"}, b"phone=5125550147&name=Ann", url="https://r.example/hooks/x")
        made = sign(chosen, plain, env, 1_700_000_000)
        signed = request({"webhook-id": "msg_1", **made}, plain.body, url=plain.url)
        check_signature(chosen, signed, env, 1_700_000_000)


def test_form_sorted_and_literal_parts():
    custom = SignatureSpec(header="X-Sig", algorithm="hmac-sha1", encoding="base64",
                           signed=(Part("url"), Part("form_sorted")),
                           secret_envs=("SECRET",))
    body, url = b"b=2&a=1", "https://r.example/hooks/twilio"
    expected = base64.b64encode(hmac.new(b"t", (url + "a1b2").encode(), hashlib.sha1).digest()).decode()
    check_signature(custom, request({"X-Sig": expected}, body, url=url), {"SECRET": "t"}, 0)
