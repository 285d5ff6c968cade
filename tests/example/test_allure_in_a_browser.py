"""What a reviewer sees: the example's Allure results rendered by the real Allure 3 command line
(``tools/render_allure.sh``: allure@3.18.0 from npm into ``.tools/``), opened in a real headless
Chromium (Debian's ``/usr/bin/chromium``, driven by Playwright) from a loopback HTTP server, as
the report is meant to be served. DESIGN section 4: in Allure 3's default tree the candidate run
and the verification re-run sit under separate nodes that name the version, every test's name
carries the version, and the gate and rollback results sit under their own node.

Screenshots are kept as CI artifacts: the index as it opens (``build/allure-example-index.png``)
and with the verification node opened (``build/allure-example-verification.png``).
"""

from __future__ import annotations

import functools
import http.server
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kit.constants import REPO

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = REPO / "build" / "allure-example-index.png"
OPENED = REPO / "build" / "allure-example-verification.png"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CANDIDATE = "invoice-parser v4 (candidate)"
VERIFICATION = "invoice-parser v3 (verification of v4)"
PROMOTION = "invoice-parser v4 (promotion gate)"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.is_file(), reason=f"no Chromium at {CHROMIUM} (Debian: apt-get install -y chromium)"
)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example (v4 fails, rolled back to v3, verified) rendered by Allure 3."""
    out = tmp_path_factory.mktemp("allure-example")
    done = subprocess.run(
        ["bash", str(REPO / "tools" / "render_allure.sh"), str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return out / "allure-report"


@pytest.fixture(scope="module")
def served(report: Path) -> Iterator[str]:
    """The report over HTTP on loopback (a browser does not fetch a report's data from file://)."""
    handler = functools.partial(_QuietHandler, directory=str(report))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _lines(page: Any) -> list[str]:
    return [line.strip() for line in page.inner_text("body").splitlines() if line.strip()]


def test_candidate_and_verification_runs_are_separate_versioned_nodes(served: str) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(served)
            # The tree is drawn by the report's script once its data loaded.
            page.get_by_text(CANDIDATE, exact=True).wait_for(timeout=60_000)
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)
            # The verification node is collapsed at first: a reader opens it, then each node in it.
            node = page.get_by_text(VERIFICATION, exact=True)
            node.click()
            subtree = node.locator("xpath=../..")  # the node's section and its children
            for name in ("smoke", "test_invoice_smoke.py"):
                subtree.get_by_text(name, exact=True).click()
            page.get_by_text("test_prod_smoke · v3 verification", exact=True).wait_for(timeout=30_000)
            page.screenshot(path=str(OPENED), full_page=True)
            lines = _lines(page)
        finally:
            browser.close()
    # Three top nodes, in the order a reader meets them, each once.
    tops = [PROMOTION, CANDIDATE, VERIFICATION]
    assert [line for line in lines if line in tops] == tops
    promotion, candidate, verification = (lines.index(top) for top in tops)
    gate_and_rollback = lines[promotion:candidate]
    assert "scriptum gate invoice-parser v4: fail" in gate_and_rollback and "rollback" in gate_and_rollback
    candidate_run, verification_run = lines[candidate:verification], lines[verification:]
    # Every test row names its version, and no row of one run sits under the other's node.
    assert "test_prod_smoke · v4" in candidate_run and "test_prod_smoke · v3 verification" in verification_run
    assert not [line for line in candidate_run if line.endswith(" verification")]
    assert not [line for line in verification_run if line.endswith("· v4")]
    assert not [line for line in gate_and_rollback if "· v" in line]
    assert SCREENSHOT.stat().st_size > 10_000 and OPENED.stat().st_size > 10_000


def test_the_report_was_rendered_by_allure_3(report: Path) -> None:
    assert (report / "index.html").is_file()
    npm_allure = REPO / ".tools" / "node_modules" / ".bin" / "allure"
    version = subprocess.run([str(npm_allure), "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.strip().startswith("3.18.0")
    assert shutil.which("node") is not None
