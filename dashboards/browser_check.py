"""Open every dashboard and every tab in a real headless Chromium, as an analyst would.

Run by Superset's own Python (it has selenium; the platform's venv does not), with a
JSON request on standard input: ``url``, ``user``, ``password``, ``dashboards``
(``slug``, ``tabs``: the tab ids of the bundle), ``screenshots`` (a folder) and
``timeout_s``. Answers with one JSON line: per dashboard and tab, the charts found,
those rendered, the error texts shown, the not-landed notes, the screenshot path.

Chromium is Debian's (``/usr/bin/chromium``, driven by ``/usr/bin/chromedriver``),
started with no network of its own beyond Superset, no first-run or sync, and a fresh
profile, so a run never depends on what a previous one left.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-quic",
    "--disable-sync",
    "--window-size=1400,1100",
)

# A chart has rendered when its container holds what its plugin draws.
_RENDERED = "canvas, svg, table, .superset-legacy-chart-big-number, .big_number_total"
_ERROR = (
    ".ant-alert-error, [data-test='error-alert'], [role='alert'].alert-danger,"
    " .chart-error, [data-test='chart-error']"
)
_LOADING = ".loading, [data-test='loading-indicator'], [aria-label='loading']"
# The tab bar's own panels stay empty: Superset draws the active tab's content in the
# grid below it, and hides the other tabs' charts. So: what is visible in the grid.
_PANE_STATE_JS = """
const grid = document.querySelector(".grid-container");
if (!grid) return null;
const visible = s => Array.from(grid.querySelectorAll(s)).filter(e => e.offsetParent !== null);
const charts = visible("[data-test='chart-container']");
return {
  charts: charts.length,
  rendered: charts.filter(c => c.querySelector(arguments[0])).length,
  loading: visible(arguments[2]).length,
  errors: visible(arguments[1]).map(e => e.innerText.trim()).filter(t => t),
  text: charts.map(c => c.innerText).join("\\n"),
  notes: visible(".dashboard-markdown").filter(e => e.innerText.includes("Not landed yet")).length,
};
"""


def _driver(profile: str) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def _log_in(driver: webdriver.Chrome, url: str, user: str, password: str) -> None:
    driver.get(f"{url}/login/")
    _wait(lambda: driver.find_elements(By.ID, "username"), 90, "the login form")
    driver.find_element(By.ID, "username").send_keys(user)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    _wait(lambda: "/login" not in driver.current_url, 90, "the login to finish")


def _wait(ready: Any, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = ready()
        if value:
            return value
        time.sleep(0.25)
    raise TimeoutError(f"waited {timeout_s:.0f} s for {what}")


def _pane_state(driver: webdriver.Chrome) -> dict[str, Any] | None:
    result: dict[str, Any] | None = driver.execute_script(
        _PANE_STATE_JS, _RENDERED, _ERROR, _LOADING
    )
    return result


def check_dashboard(
    driver: webdriver.Chrome, url: str, dashboard: dict[str, Any], shots: Path, timeout_s: float
) -> list[dict[str, Any]]:
    driver.get(f"{url}/superset/dashboard/{dashboard['slug']}/")
    tabs_found = []
    for index, tab in enumerate(dashboard["tabs"]):
        button = _wait(
            lambda tab=tab: driver.find_elements(By.ID, f"TABS-main-tab-{tab}"),
            timeout_s,
            f"tab {tab} of {dashboard['slug']}",
        )[0]
        button.click()

        def settled() -> dict[str, Any] | None:
            state = _pane_state(driver)
            if state is None or state["loading"]:
                return None
            done = state["rendered"] + len(state["errors"]) >= state["charts"]
            return state if done and (state["charts"] or state["notes"]) else None

        try:
            state = _wait(settled, timeout_s, f"the charts of {dashboard['slug']} / {tab}")
        except TimeoutError as exc:
            state = _pane_state(driver) or {}
            state.setdefault("errors", []).append(str(exc))
        time.sleep(0.5)  # let animations end before the picture
        shot = shots / f"{dashboard['slug']}-{index + 1}.png"
        driver.save_screenshot(str(shot))
        tabs_found.append({"tab": tab, "screenshot": str(shot), **state})
    return tabs_found


def main() -> None:
    request = json.loads(sys.stdin.read())
    shots = Path(request["screenshots"])
    shots.mkdir(parents=True, exist_ok=True)
    timeout_s = float(request.get("timeout_s", 45))
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bizos-chromium-") as profile:
        driver = _driver(profile)
        try:
            _log_in(driver, request["url"], request["user"], request["password"])
            result = {
                d["slug"]: check_dashboard(driver, request["url"], d, shots, timeout_s)
                for d in request["dashboards"]
            }
        except (WebDriverException, TimeoutError) as exc:
            print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
            sys.exit(2)
        finally:
            driver.quit()
    print(json.dumps({"dashboards": result, "seconds": round(time.monotonic() - started, 1)}))


if __name__ == "__main__":
    main()
