"""The smoke study's report in a real browser (Debian's chromium driven by playwright), opened from disk:
no console error, no failed request, no request leaving the folder, every image loaded, the trial table
sorting on a click and filtering as one types.

Without /usr/bin/chromium the test is skipped, so the README's test command runs on any machine; CI
installs chromium and sets REQUIRE_BROWSER_VARIABLE, which turns that skip into a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import SmokeRun

CHROMIUM = Path("/usr/bin/chromium")
REQUIRE_BROWSER_VARIABLE = "CHEST_XRAY_REQUIRE_BROWSER"

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("smoke")]


def _browser_available() -> None:
    if CHROMIUM.is_file():
        return
    message = f"no {CHROMIUM} (apt-get install chromium)"
    if os.environ.get(REQUIRE_BROWSER_VARIABLE):
        pytest.fail(f"{message}, and {REQUIRE_BROWSER_VARIABLE} is set")
    pytest.skip(message)


def test_report_opens_offline_with_every_image_and_a_sorting_table(smoke: SmokeRun) -> None:
    _browser_available()
    sync_api = pytest.importorskip("playwright.sync_api")
    report = smoke.paths.report.resolve()
    errors: list[str] = []
    failed: list[str] = []
    outside: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page()
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("requestfailed", lambda request: failed.append(request.url))
        page.on("request", lambda request: None if request.url.startswith(("file://", "data:")) else
                outside.append(request.url))  # fmt: skip
        page.goto(report.as_uri(), wait_until="load")
        images = page.evaluate(
            "Array.from(document.images).map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0])"
        )
        table = page.locator("table.sortable.trials")
        header = table.locator("thead th", has_text="val AUC")
        column = page.evaluate(
            "Array.from(document.querySelectorAll('table.sortable.trials thead th')).findIndex("
            "th => th.textContent.trim() === 'val AUC')"
        )
        cells = f"Array.from(document.querySelectorAll('table.sortable.trials tbody tr')).map(r => r.cells[{column}]"
        cells += ".textContent.trim())"
        header.click()
        ascending = page.evaluate(cells)
        header.click()
        descending = page.evaluate(cells)
        first_id = table.locator("tbody tr").first.locator("td").nth(1).inner_text().strip()
        page.fill("input[data-filter-table='trials-table']", first_id)
        visible = table.locator("tbody tr:not([hidden])").count()
        browser.close()
    assert not errors, errors
    assert not failed, failed
    assert not outside, outside
    assert len(images) >= 5 and all(loaded for _, loaded in images), [src for src, ok in images if not ok]
    values = [float(text) for text in ascending if text not in ("", "\u2013")]
    assert len(values) >= 2 and values == sorted(values)
    assert [float(text) for text in descending if text not in ("", "\u2013")] == sorted(values, reverse=True)
    assert visible == 1, f"typing trial id {first_id} into the filter leaves its row only"
