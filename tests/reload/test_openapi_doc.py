"""``/openapi.json`` describes what the app serves."""
from __future__ import annotations


def test_served_document_lists_the_app_routes(make_app, acme):
    client = make_app(acme).test_client()
    doc = client.get("/openapi.json").get_json()
    assert doc["openapi"] == "3.1.0"
    hooks = doc["paths"]["/hooks/{source}"]
    assert set(hooks) >= {"get", "post", "put", "parameters"}
    assert hooks["parameters"][0]["schema"]["enum"] == ["acme"]
    assert {"400", "401", "403", "404", "413", "415", "422", "429", "503"} <= set(hooks["post"]["responses"])
    assert "Retry-After" in hooks["post"]["responses"]["429"]["headers"]
    assert "/healthz" in doc["paths"]
    for path in doc["paths"]:
        assert client.get(path.replace("{source}", "acme")).status_code != 404 or "{" in path


def test_every_reference_resolves(make_app, acme):
    import json

    doc = make_app(acme).test_client().get("/openapi.json").get_json()
    text = json.dumps(doc)
    for ref in {part.split('"')[0] for part in text.split('"$ref": "')[1:]}:
        section, group, name = ref.lstrip("#/").split("/")
        assert name in doc[section][group]
