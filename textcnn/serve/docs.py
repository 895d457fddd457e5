"""``GET /docs``: Swagger UI served from the installed ``swagger-ui-py`` package, no CDN.

FastAPI's own ``/docs`` page loads Swagger UI's script and style from a CDN, so it is blank on
a machine without network. Here the page points at ``/docs/assets/``, which serves the files
that the ``swagger-ui-py`` package (in the ``serve`` extra) ships; without that package the
page falls back to the CDN. ReDoc, CDN-only, is off.

Example
-------
>>> from fastapi import FastAPI
>>> from fastapi.testclient import TestClient
>>> app = FastAPI(docs_url=None, redoc_url=None)
>>> add_docs(app)
>>> page = TestClient(app).get("/docs").text
>>> "/docs/assets/swagger-ui-bundle.js" in page, "cdn" in page
(True, False)
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs/assets"


def swagger_ui_files() -> Path | None:
    """The folder of Swagger UI's script and style in the ``swagger-ui-py`` package, or None
    when it is not installed (found without importing the package)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        return None
    static = Path(next(iter(spec.submodule_search_locations))) / "static"
    return static if (static / "swagger-ui-bundle.js").is_file() else None


def add_docs(app: FastAPI, openapi_url: str = "/openapi.json") -> None:
    """Add ``GET /docs`` (and its assets) to ``app``, built with ``docs_url=None``."""
    static = swagger_ui_files()
    urls = {}
    if static is not None:
        app.mount(ASSETS, StaticFiles(directory=static), name="docs-assets")
        urls = {"swagger_js_url": f"{ASSETS}/swagger-ui-bundle.js",
                "swagger_css_url": f"{ASSETS}/swagger-ui.css",
                "swagger_favicon_url": f"{ASSETS}/favicon-32x32.png"}

    @app.get("/docs", include_in_schema=False)
    async def docs():
        return get_swagger_ui_html(openapi_url=openapi_url, title=f"{app.title} - docs", **urls)
