"""A real browser (Debian's chromium, driven by playwright with ``executable_path``; no browser
download) opens what omerowizard deployed through a real nginx: the login page renders with every
stylesheet, script and image it asks for, and while OMERO.web is stopped the maintenance page is
what the visitor sees."""

from __future__ import annotations

import subprocess

import pytest

from tests import parts
from tests.parts import nginx_wrapper

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    chromium = parts.require("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("missing part: the playwright package (the test extras: bash scripts/test --setup-only)", pytrace=False)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, headless=True, args=FLAGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def served(deployment):
    """The deployment applied below /omero behind a private nginx; yields the front door's URL."""
    nginx = parts.require("nginx")
    port = parts.free_port()
    site = deployment.workdir / "site" / "omero-web.conf"
    path = deployment.answers_file({"web_server": {"kind": "nginx", "port": port, "config_path": str(site)},
                                    "prefix": "/omero", "application_server": {"workers": 1},
                                    "sessions": {"clearsessions": "off"}})
    applied = deployment.cli("apply", str(path))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    wrapper = nginx_wrapper(site, deployment.workdir)
    log = str(deployment.workdir / "e.log")
    subprocess.run([nginx, "-c", str(wrapper), "-e", log], check=True)
    try:
        parts.wait_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        subprocess.run([nginx, "-c", str(wrapper), "-e", log, "-s", "stop"], check=False)


def test_a_browser_sees_the_styled_login_page_then_the_maintenance_page(browser, served, deployment):
    page = browser.new_page()
    failed: list[str] = []
    loaded: list[str] = []
    # only the site's own requests: the login page also asks GitHub for OMERO.insight's releases
    page.on("requestfailed", lambda r: r.url.startswith(served) and failed.append(f"{r.url} ({r.failure})"))
    page.on("response", lambda r: r.url.startswith(served) and
            (failed if r.status >= 400 else loaded).append(f"{r.status} {r.url}"))
    try:
        first = page.goto(f"{served}/omero/", wait_until="networkidle")
        # OMERO.web's root redirects to the webclient, which sends a visitor to its login page
        assert first is not None and first.status == 200
        assert page.url.startswith(f"{served}/omero/webclient/login/"), page.url
        assert page.locator("#id_username").is_visible() and page.locator("#id_password").is_visible()
        assert not failed, failed
        static = [u for u in loaded if "/omero/static/" in u]
        assert any(u.split("?")[0].endswith(".css") for u in static), loaded
        assert any(u.split("?")[0].endswith(".js") for u in static), loaded
        # the stylesheets apply: the login form is laid out by OMERO.web's CSS, not the browser's defaults
        sheets = page.evaluate("() => Array.from(document.styleSheets).filter(s => s.cssRules.length > 0).length")
        assert sheets >= 1
        assert page.evaluate("() => getComputedStyle(document.body).margin") != "8px"

        deployment.omero("web", "stop")
        down = page.goto(f"{served}/omero/webclient/login/", wait_until="load")
        assert down is not None and down.status == 503
        assert page.locator("#omerowizard-maintenance").is_visible()
        assert "maintenance" in page.locator("body").inner_text().lower()
    finally:
        page.close()
