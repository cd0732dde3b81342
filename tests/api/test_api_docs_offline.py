"""`/docs` and `/redoc` load every asset from this server: no CDN, no web fonts."""

from __future__ import annotations

import re

import pytest


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_reference_only_local_assets(client, page):
    r = client.get(page)
    assert r.status_code == 200
    html = r.text
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html) + re.findall(
        r"url:\s*'([^']+)'", html
    )
    assert urls, html
    for url in urls:
        assert url.startswith("/"), f"{page} loads {url} from another origin"
        assert client.get(url).status_code == 200, url
    assert "cdn" not in html.lower() and "googleapis" not in html
    assert "default-src 'self'" in r.headers["content-security-policy"]


def test_docs_assets_are_the_real_bundles(client):
    js = client.get("/static/docs/swagger-ui-bundle.js")
    assert js.status_code == 200 and len(js.content) > 100_000
    assert "SwaggerUIBundle" in js.text[:2_000_000]
    assert len(client.get("/static/docs/redoc.standalone.js").content) > 100_000
