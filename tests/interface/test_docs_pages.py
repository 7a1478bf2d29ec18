"""/docs and /redoc load everything from the service itself: they must work
on a machine that cannot reach a CDN."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from interface.http.app import create_app
from interface.wiring.settings import Settings

REFERENCE = re.compile(r"""(?:src|href|spec-url)=["']([^"']+)["']|url: ?'([^']+)'""")
TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png", ".json": "application/json"}


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app(Settings(data_dir=Path("unused"), api_keys="k:token:admin")))


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_a_page_and_every_asset_it_references_load_from_the_service(client, page):
    answer = client.get(page)
    assert answer.status_code == 200 and "text/html" in answer.headers["content-type"]
    references = [a or b for a, b in REFERENCE.findall(answer.text)]
    assert any(ref.endswith(".js") for ref in references), references  # the UI's script
    assert "/openapi.json" in references
    for reference in references:
        assert reference.startswith("/") and not reference.startswith("//"), reference
        asset = client.get(reference)
        assert asset.status_code == 200, reference
        assert len(asset.content) > 100, reference
        suffix = Path(reference).suffix
        assert TYPES[suffix] in asset.headers["content-type"], (reference, asset.headers)
    assert "cdn." not in answer.text and "fonts.googleapis" not in answer.text


def test_the_swagger_ui_oauth2_redirect_page_is_served(client):
    assert client.get("/docs/oauth2-redirect").status_code == 200


def test_the_assets_are_not_in_the_openapi_document(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert not any(path.startswith(("/docs", "/redoc")) for path in paths)
