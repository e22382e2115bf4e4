"""Headless-browser check of the Airflow 3 UI: a person triggers pricegroups_daily with the form.

Logs in through the simple auth manager's page, opens the DAG, opens the Trigger
dialog, types the `stores` param (an array of strings, which Airflow's form
renders as a textarea with one item per line), triggers, and then follows the
run through the REST API until it succeeds. Screenshots of every step go to the
`screenshots` folder so a failure can be looked at afterwards.

The browser is Debian's chromium and chromedriver (`apt-get install chromium
chromium-driver`); Selenium Manager is kept offline, it never downloads one.
Importing this module does nothing: Selenium itself is imported on first use.

    python scripts/e2e_ui.py --url http://127.0.0.1:8181 --user admin --password X \
        --stores FM001 --screenshots reports/e2e [--groups-view --database-url URL]

With --groups-view it then opens the pricegroups plugin's Price groups page
from the navigation and the run's Price groups tab, and checks what they show
against the pricegroups database (`ui_groups_check`).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

DAG_ID = "pricegroups_daily"
CHROMIUM = pathlib.Path("/usr/bin/chromium")
CHROMEDRIVER = pathlib.Path("/usr/bin/chromedriver")
# Without the background-networking flags Chromium keeps dialling Google services,
# which this machine's closed network refuses.
CHROME_ARGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1400,1000",
)
UI_WAIT_S = 90.0  # one page or dialog to appear: 30 s and more when the machine is busy
POLL_S = 5.0

# Locators as (strategy, value), the strategies being Selenium's `By` strings, so
# that they can be declared without importing Selenium. Airflow's own data-testid
# attributes and form field names first; ids like `_r_1v_` change between renders.
LOGIN_USERNAME = ("name", "username")
LOGIN_PASSWORD = ("name", "password")
LOGIN_SUBMIT = ("css selector", "form button[type=submit]")
TRIGGER_BUTTON = ("css selector", "[data-testid=trigger-dag-button]")
TRIGGER_DIALOG = ("css selector", "[role=dialog][aria-modal=true][data-state=open]")
PARAMS_SECTION = ("xpath", ".//button[@data-part='item-trigger'][normalize-space()='Run Parameters']")
STORES_FIELD = ("css selector", "textarea[name=element_stores]")
TRIGGER_SUBMIT = ("css selector", "[data-testid=trigger-dag-submit]")
ERROR_TOAST = ("css selector", "[data-scope=toast][data-part=root][data-type=error]")
HEADER_CARD = ("css selector", "[data-testid=header-card]")  # the DAG's page has one too: match the run id
STATE_BADGE = ("css selector", "[data-testid=state-badge]")
# the pricegroups plugin (plugins/pricegroups_ui_plugin.py): its nav button and the iframe the UI shows it in
GROUPS_NAV = ("css selector", "a[href$='plugin/price-groups']")
PLUGIN_FRAME = ("css selector", "iframe[title='Price groups']")
CHAIN_SECTION = ("css selector", "section.chain")
RUN_HEADING = ("css selector", "h1")


# ---------------------------------------------------------------- REST API


def _api(base_url: str, path: str, token: str | None = None, body: dict | None = None,
         method: str | None = None) -> Any:
    """One JSON request to the API server; an HTTP error becomes an AssertionError with its body."""
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base_url.rstrip("/") + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"{method or ('POST' if data else 'GET')} {path}: HTTP {exc.code} "
                             f"{exc.read()[:300].decode(errors='replace')}") from exc
    except urllib.error.URLError as exc:
        raise AssertionError(f"{path}: API server {base_url} unreachable ({exc.reason})") from exc


def api_token(base_url: str, username: str, password: str) -> str:
    """A JWT for the REST API, from the simple auth manager's token endpoint."""
    return _api(base_url, "/auth/token", body={"username": username, "password": password})["access_token"]


def _runs_path(run_id: str = "") -> str:
    path = f"/api/v2/dags/{DAG_ID}/dagRuns"
    return f"{path}/{urllib.parse.quote(run_id, safe='')}" if run_id else path


def recent_runs(base_url: str, token: str, limit: int = 10) -> list[dict]:
    """The DAG's newest runs, newest first (manual runs have run_after = the moment they were triggered)."""
    return _api(base_url, f"{_runs_path()}?order_by=-run_after&limit={limit}", token)["dag_runs"]


def failed_tasks(base_url: str, token: str, run_id: str) -> list[str]:
    """Task ids (with map index) that failed in a run, to say why a run failed."""
    tis = _api(base_url, f"{_runs_path(run_id)}/taskInstances?limit=200", token)["task_instances"]
    return [t["task_id"] + (f"[{t['map_index']}]" if t["map_index"] >= 0 else "")
            for t in tis if t["state"] == "failed"]


def find_triggered_run(base_url: str, token: str, run_id: str | None, before: set[str],
                       stores: list[str]) -> dict:
    """The run this check triggered: the one the UI opened, else the newest manual run that is new.

    Either way its conf must carry the stores typed into the form: a run found
    by position alone could be someone else's.
    """
    runs = recent_runs(base_url, token)
    if run_id is None:
        new = [r for r in runs if r["dag_run_id"] not in before and r["run_type"] == "manual"]
        if not new:
            raise AssertionError(f"no new manual run of {DAG_ID} after the trigger; newest runs: "
                                 f"{[r['dag_run_id'] for r in runs[:3]]}")
        run = new[0]
    else:
        run = _api(base_url, _runs_path(run_id), token)
    got = (run.get("conf") or {}).get("stores")
    if got != list(stores):
        raise AssertionError(f"run {run['dag_run_id']}: conf stores {got!r}, typed {list(stores)!r}")
    return run


def wait_for_success(base_url: str, token: str, run_id: str, deadline: float) -> dict:
    """Poll the run until it succeeds; a failed run or the deadline is an AssertionError."""
    state = "?"
    while time.monotonic() < deadline:
        run = _api(base_url, _runs_path(run_id), token)
        state = run["state"]
        if state == "success":
            return run
        if state == "failed":
            raise AssertionError(f"run {run_id} ended in state {state}; failed tasks: "
                                 f"{failed_tasks(base_url, token, run_id) or 'none recorded'}")
        time.sleep(POLL_S)
    paused = _api(base_url, f"/api/v2/dags/{DAG_ID}", token).get("is_paused")
    raise AssertionError(f"run {run_id} still {state} when the check timed out"
                         + (f" ({DAG_ID} is paused: its runs never start)" if paused else ""))


# ---------------------------------------------------------------- browser


def check_browser() -> None:
    """Debian's chromium and chromedriver must be there: this check never downloads a browser."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not (p.exists() and os.access(p, os.X_OK))]
    if missing:
        raise AssertionError(f"{', '.join(missing)} missing: apt-get install chromium chromium-driver")


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium driven by Debian's chromedriver, with a throwaway profile."""
    check_browser()
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager: look, never download
    try:
        from selenium import webdriver
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.chrome.service import Service
    except ImportError as exc:
        raise AssertionError("selenium missing: pip install -r requirements-e2e.txt") from exc
    profile = tempfile.mkdtemp(prefix="e2e-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (*CHROME_ARGS, f"--user-data-dir={profile}"):
        options.add_argument(arg)
    try:
        driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    except WebDriverException as exc:
        shutil.rmtree(profile, ignore_errors=True)
        raise AssertionError(f"chromium did not start under {CHROMEDRIVER}: {exc.msg}") from exc
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _wait(driver: Any, what: str, condition: Callable[[Any], Any], timeout_s: float = UI_WAIT_S) -> Any:
    """WebDriverWait.until, but a timeout says which step was waiting and where the browser was."""
    from selenium.common import exceptions as ex
    from selenium.webdriver.support.ui import WebDriverWait

    # React re-renders replace elements under our feet: a stale one just means "look again"
    ignored = (ex.NoSuchElementException, ex.StaleElementReferenceException)
    try:
        return WebDriverWait(driver, timeout_s, 0.25, ignored).until(condition)
    except ex.TimeoutException:
        where = driver.current_url
        raise AssertionError(f"UI: {what} not seen within {timeout_s:.0f}s (page {where})") from None


def _visible(driver: Any, locator: tuple[str, str], what: str, within: Any = None) -> Any:
    """The first displayed element for `locator` (in `within`, else the page), waiting for it."""
    def found(_: Any) -> Any:
        for element in (within or driver).find_elements(*locator):
            if element.is_displayed():
                return element
        return False

    return _wait(driver, what, found)


def _shot(driver: Any, folder: pathlib.Path, name: str) -> None:
    driver.save_screenshot(str(folder / name))


def _last_shot(driver: Any, folder: pathlib.Path) -> None:
    """failure.png: the page as it was when the check gave up, if the browser still answers."""
    with suppress(Exception):  # the browser may be what failed; the error says more than this would
        _shot(driver, folder, "failure.png")


def _click(driver: Any, element: Any) -> None:
    """Scroll the element to the middle and click it (a sticky header or dialog footer can hide it)."""
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
    element.click()


def log_in(driver: Any, base_url: str, username: str, password: str, shots: pathlib.Path) -> None:
    """The root page sends a stranger to the login form; sign in and wait to be let through."""
    driver.get(base_url)
    user_field = _visible(driver, LOGIN_USERNAME, "the login form's username field")
    _shot(driver, shots, "01-login.png")
    user_field.send_keys(username)
    driver.find_element(*LOGIN_PASSWORD).send_keys(password)
    submit = driver.find_element(*LOGIN_SUBMIT)
    _wait(driver, "an enabled Sign in button", lambda _: submit.is_enabled())
    submit.click()
    _wait(driver, f"the UI after signing in as {username} (wrong password?)",
          lambda d: "/auth/login" not in d.current_url)


def open_trigger_form(driver: Any, base_url: str, shots: pathlib.Path) -> Any:
    """Open the DAG's page, press Trigger, and return the dialog."""
    driver.get(f"{base_url}/dags/{DAG_ID}")
    button = _visible(driver, TRIGGER_BUTTON, f"the Trigger button on {DAG_ID}'s page")
    _shot(driver, shots, "02-dag.png")
    _click(driver, button)
    dialog = _visible(driver, TRIGGER_DIALOG, "the Trigger dialog")
    _visible(driver, STORES_FIELD, "the Stores field", within=_expand_params(driver, dialog))
    _shot(driver, shots, "03-trigger-form.png")
    return dialog


def _expand_params(driver: Any, dialog: Any) -> Any:
    """Open the dialog's "Run Parameters" section if it is collapsed; returns the dialog."""
    section = _visible(driver, PARAMS_SECTION, "the dialog's Run Parameters section", within=dialog)
    if section.get_attribute("aria-expanded") != "true":
        _click(driver, section)
        _wait(driver, "the Run Parameters section to open",
              lambda _: section.get_attribute("aria-expanded") == "true")
    return dialog


def fill_stores(driver: Any, dialog: Any, stores: list[str], shots: pathlib.Path) -> None:
    """Type the store codes into the Stores textarea, one per line, as its placeholder asks."""
    from selenium.webdriver.common.keys import Keys

    field = _visible(driver, STORES_FIELD, "the Stores field", within=dialog)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", field)
    field.click()
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(Keys.DELETE)
    for i, store in enumerate(stores):
        field.send_keys(("\n" if i else "") + store)
    _wait(driver, f"the Stores field to read {stores}",
          lambda _: field.get_attribute("value").split("\n") == list(stores))
    _shot(driver, shots, "04-filled.png")


def submit_trigger(driver: Any, dialog: Any, shots: pathlib.Path) -> str | None:
    """Press the dialog's Trigger button; returns the run id of the run page the UI then opens.

    None when the dialog closed without opening a run page: the REST API names the run then.
    """
    button = dialog.find_element(*TRIGGER_SUBMIT)
    if not button.is_enabled():
        said = [e.text for e in dialog.find_elements("css selector", "[data-part=error-text]") if e.text]
        raise AssertionError(f"UI: the dialog's Trigger button is disabled: {said or dialog.text[-300:]!r}")
    marker = f"/dags/{DAG_ID}/runs/"
    _click(driver, button)
    _wait(driver, "the run page, the dialog closing or an error after Trigger",
          lambda d: (marker in d.current_url or not d.find_elements(*TRIGGER_DIALOG)
                     or d.find_elements(*ERROR_TOAST)),
          timeout_s=30)
    errors = [t.text.replace("\n", ": ") for t in driver.find_elements(*ERROR_TOAST)]
    if errors and marker not in driver.current_url:
        _shot(driver, shots, "05-run.png")
        raise AssertionError(f"UI: the trigger was refused: {'; '.join(errors)} (stores typed: "
                             f"{dialog.find_element(*STORES_FIELD).get_attribute('value')!r})")
    if marker not in driver.current_url:
        _shot(driver, shots, "05-run.png")
        return None
    run_id = urllib.parse.unquote(driver.current_url.split(marker, 1)[1].split("?")[0].split("/")[0])
    _wait(driver, f"the page of run {run_id}", lambda d: _run_badge_text(d, run_id))
    _shot(driver, shots, "05-run.png")
    return run_id


def _run_badge_text(driver: Any, run_id: str) -> str | bool:
    """The state shown in the header of run `run_id`'s page, False while no header names that run.

    The DAG's own page has a header card and a state badge too; the URL changes
    before the page does, so the run id in the header is what says the run page is up.
    """
    for header in driver.find_elements(*HEADER_CARD):
        if header.is_displayed() and run_id in header.text:
            badges = header.find_elements(*STATE_BADGE)
            return badges[0].text.strip().lower() if badges else False
    return False


def show_success(driver: Any, base_url: str, run_id: str, shots: pathlib.Path) -> None:
    """Reload the run's page and wait for its header to say Success, for the last screenshot."""
    driver.get(f"{base_url}/dags/{DAG_ID}/runs/{urllib.parse.quote(run_id, safe='')}")
    _wait(driver, f"the page of run {run_id} to say Success",
          lambda d: _run_badge_text(d, run_id) == "success")
    _shot(driver, shots, "06-success.png")


# ---------------------------------------------------------------- the Price groups views


def _database_view(conninfo: str, run_id: str) -> dict[str, Any]:
    """What the views must show, read straight from the pricegroups database."""
    import psycopg

    with psycopg.connect(conninfo) as conn:
        groups: dict[str, list[list[str]]] = {}
        for chain, group, anchor in conn.execute(
            """SELECT c.code, g.group_id::text, a.code FROM store_groups g JOIN chains c USING (chain_id)
               JOIN stores a ON a.store_id = g.anchor_store_id ORDER BY c.code, g.group_id"""):
            groups.setdefault(chain, []).append([group, anchor])
        stores = dict(conn.execute(
            "SELECT c.code, count(*) FROM stores s JOIN chains c USING (chain_id) GROUP BY c.code").fetchall())
        scraped = dict(conn.execute(
            """SELECT c.code, count(DISTINCT l.store_id) FROM scrape_log l JOIN stores s USING (store_id)
               JOIN chains c ON c.chain_id = s.chain_id WHERE l.run_id = %s GROUP BY c.code""", (run_id,)).fetchall())
        changes = dict(conn.execute(
            """SELECT kind, count(*) FROM group_events WHERE run_id = %s
                 AND kind IN ('merged', 'member_ejected', 'anchor_replaced', 'reset', 'store_closed')
               GROUP BY kind""", (run_id,)).fetchall())
    return {"groups": groups, "stores": stores, "scraped": scraped, "changes": changes}


def _in_frame(driver: Any, what: str, ready: tuple[str, str]) -> None:
    """Switch into the plugin's iframe once it shows `ready` (the UI loads it after its own page)."""
    from selenium.webdriver.support import expected_conditions as ec

    driver.switch_to.default_content()
    _wait(driver, f"the {what} iframe", ec.frame_to_be_available_and_switch_to_it(PLUGIN_FRAME))
    _wait(driver, f"the {what} inside the iframe", lambda d: d.find_elements(*ready))


def _page_groups(driver: Any) -> dict[str, dict[str, Any]]:
    """Per chain section of the Price groups page: its groups [id, anchor] and its map's store cells."""
    return driver.execute_script("""
        const out = {};
        for (const s of document.querySelectorAll('section.chain')) {
            out[s.dataset.chain] = {
                groups: Array.from(s.querySelectorAll('tr.group')).map(r => [r.dataset.group, r.dataset.anchor]),
                cells: s.querySelectorAll('svg.group-map g.store').length};
        }
        return out;""")


def _scroll_frame_to(driver: Any, css: str) -> None:
    driver.execute_script("const e = document.querySelector(arguments[0]); if (e) e.scrollIntoView();", css)


def check_plugin_api(base_url: str, token: str, chain: str, expected: list[list[str]]) -> None:
    """GET /pricegroups/api/groups: refused without credentials, the database's groups with a token."""
    url = f"{base_url}/pricegroups/api/groups?chain={urllib.parse.quote(chain)}"
    try:
        urllib.request.urlopen(urllib.request.Request(url, headers={"Accept": "application/json"}), timeout=30)
        raise AssertionError(f"{url} answered without credentials")
    except urllib.error.HTTPError as exc:
        if exc.code not in (401, 403):
            raise AssertionError(f"{url} without credentials: HTTP {exc.code}, expected 401") from exc
    body = _api(base_url, f"/pricegroups/api/groups?chain={urllib.parse.quote(chain)}", token)
    got = sorted([str(g["group_id"]), g["anchor"]["store"]] for g in body["groups"])
    if got != sorted(expected):
        raise AssertionError(f"/pricegroups/api/groups?chain={chain}: {got[:5]}..., database {sorted(expected)[:5]}...")


def ui_groups_check(base_url: str, username: str, password: str, run_id: str, conninfo: str,
                    screenshots: pathlib.Path) -> dict[str, Any]:
    """Log in, open Price groups from the navigation and a run's Price groups tab; check both against the database.

    Also checks the plugin's JSON: refused without credentials, the database's groups with a token.
    Screenshots 07-10 go to `screenshots`; returns what was checked.
    """
    check_browser()
    base_url = base_url.rstrip("/")
    screenshots = pathlib.Path(screenshots)
    screenshots.mkdir(parents=True, exist_ok=True)
    truth = _database_view(conninfo, run_id)
    if not truth["groups"]:
        raise AssertionError("the pricegroups database has no groups: run the DAG first")
    token = api_token(base_url, username, password)
    plugins = [p["name"] for p in _api(base_url, "/api/v2/plugins", token)["plugins"]]
    if "pricegroups" not in plugins:
        raise AssertionError(f"the pricegroups plugin is not loaded; plugins: {plugins}")
    first = sorted(truth["groups"])[0]
    check_plugin_api(base_url, token, first, truth["groups"][first])
    with chromium() as driver:
        from selenium.common.exceptions import WebDriverException

        try:
            log_in(driver, base_url, username, password, screenshots)
            _click(driver, _visible(driver, GROUPS_NAV, "the Price groups button in the navigation"))
            _in_frame(driver, "Price groups page", CHAIN_SECTION)
            shown = _page_groups(driver)
            for chain, groups in truth["groups"].items():
                page = shown.get(chain)
                if page is None:
                    raise AssertionError(f"Price groups: no section for chain {chain} (shown: {sorted(shown)})")
                if sorted(page["groups"]) != sorted(groups):
                    raise AssertionError(f"Price groups, {chain}: groups {sorted(page['groups'])[:4]}..., "
                                         f"database {sorted(groups)[:4]}...")
                if page["cells"] != truth["stores"].get(chain, 0):
                    raise AssertionError(f"Price groups, {chain}: {page['cells']} stores on the map, "
                                         f"database {truth['stores'].get(chain)}")
            driver.switch_to.default_content()
            _shot(driver, screenshots, "07-price-groups.png")
            driver.switch_to.frame(driver.find_element(*PLUGIN_FRAME))
            _scroll_frame_to(driver, "svg.group-map")
            driver.switch_to.default_content()
            _shot(driver, screenshots, "08-price-groups-map.png")

            chain = sorted(truth["groups"])[-1]  # the chain filter: one chain only
            driver.switch_to.frame(driver.find_element(*PLUGIN_FRAME))
            from selenium.webdriver.support.ui import Select

            Select(driver.find_element("css selector", "select#chain")).select_by_value(chain)
            driver.find_element("css selector", "form.filter button[type=submit]").click()
            _wait(driver, f"the page filtered to {chain}",
                  lambda d: sorted(_page_groups(d)) == [chain])
            driver.switch_to.default_content()
            _shot(driver, screenshots, "09-price-groups-filtered.png")

            driver.get(f"{base_url}/dags/{DAG_ID}/runs/{urllib.parse.quote(run_id, safe='')}/plugin/pricegroups-run")
            _in_frame(driver, "run's Price groups tab", RUN_HEADING)
            heading = driver.find_element(*RUN_HEADING).text
            if heading != f"Run {run_id}":
                raise AssertionError(f"run view: heading {heading!r}, expected 'Run {run_id}'")
            scraped = driver.execute_script(
                "return Object.fromEntries(Array.from(document.querySelectorAll('tr[data-scraped]'))"
                ".map(r => [r.dataset.chain, Number(r.dataset.scraped)]));")
            if scraped != truth["scraped"]:
                raise AssertionError(f"run view: stores scraped {scraped}, database {truth['scraped']}")
            changes = driver.execute_script(
                "const c = {}; for (const r of document.querySelectorAll('tr.event')) "
                "c[r.dataset.kind] = (c[r.dataset.kind] || 0) + 1; return c;")
            if changes != truth["changes"]:
                raise AssertionError(f"run view: group changes {changes}, database {truth['changes']}")
            driver.switch_to.default_content()
            _shot(driver, screenshots, "10-run-view.png")
        except AssertionError:
            driver.switch_to.default_content()
            _last_shot(driver, screenshots)
            raise
        except WebDriverException as exc:
            _last_shot(driver, screenshots)
            raise AssertionError(f"UI: browser error: {exc.msg}") from exc
    return {"chains": sorted(truth["groups"]), "groups": sum(len(g) for g in truth["groups"].values()),
            "run_scraped": truth["scraped"], "run_changes": truth["changes"]}


# ---------------------------------------------------------------- the check


def ui_trigger_check(base_url: str, username: str, password: str, stores: list[str],
                     screenshots: pathlib.Path, timeout_s: float = 600) -> str:
    """Log in, open pricegroups_daily, open the Trigger form, fill `stores`, trigger, wait for success.

    Returns the dag_run_id of the run it triggered; raises AssertionError with a
    clear message on any failure (the page at that moment is saved as failure.png).
    """
    if not stores:
        raise AssertionError("give at least one store: an empty list means every store, a much longer run")
    check_browser()  # before anything else: a machine without the browser cannot run this at all
    deadline = time.monotonic() + timeout_s
    base_url = base_url.rstrip("/")
    screenshots = pathlib.Path(screenshots)
    screenshots.mkdir(parents=True, exist_ok=True)
    token = api_token(base_url, username, password)
    _api(base_url, f"/api/v2/dags/{DAG_ID}", token)  # a 404 here says more than a missing Trigger button
    before = {r["dag_run_id"] for r in recent_runs(base_url, token, limit=50)}
    with chromium() as driver:
        from selenium.common.exceptions import WebDriverException  # importable now: chromium() checked

        try:
            log_in(driver, base_url, username, password, screenshots)
            dialog = open_trigger_form(driver, base_url, screenshots)
            fill_stores(driver, dialog, stores, screenshots)
            opened = submit_trigger(driver, dialog, screenshots)
            run_id = find_triggered_run(base_url, token, opened, before, stores)["dag_run_id"]
            wait_for_success(base_url, token, run_id, deadline)
            show_success(driver, base_url, run_id, screenshots)
        except AssertionError:
            _last_shot(driver, screenshots)
            raise
        except WebDriverException as exc:  # e.g. an element that went away between find and click
            _last_shot(driver, screenshots)
            raise AssertionError(f"UI: browser error: {exc.msg}") from exc
    return run_id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="Airflow's API server / UI")
    parser.add_argument("--user", default="admin")
    parser.add_argument("--password", required=True)
    parser.add_argument("--stores", nargs="+", default=["FM001"], help="store codes typed into the form")
    parser.add_argument("--screenshots", type=pathlib.Path, default=pathlib.Path("reports/e2e"))
    parser.add_argument("--timeout", type=float, default=600, help="seconds for the whole check")
    parser.add_argument("--groups-view", action="store_true",
                        help="then check the Price groups page and the run's Price groups tab against the database")
    parser.add_argument("--run-id", help="with --groups-view: check this run's view instead of triggering one")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"),
                        help="the pricegroups database, for --groups-view (default: DATABASE_URL)")
    args = parser.parse_args(argv)
    if args.groups_view and not args.database_url:
        parser.error("--groups-view needs --database-url (or DATABASE_URL)")
    started = time.monotonic()
    run_id = args.run_id
    if run_id is None:
        try:
            run_id = ui_trigger_check(args.url, args.user, args.password, args.stores, args.screenshots,
                                      args.timeout)
        except AssertionError as exc:
            print(f"ui_trigger=fail: {exc}")
            return 1
        print(f"run {run_id} succeeded; {time.monotonic() - started:.0f}s; screenshots in {args.screenshots}",
              file=sys.stderr)
        print(run_id)
        print("ui_trigger=pass")
    if args.groups_view:
        try:
            seen = ui_groups_check(args.url, args.user, args.password, run_id, args.database_url, args.screenshots)
        except AssertionError as exc:
            print(f"ui_groups_view=fail: {exc}")
            return 1
        print(f"groups view: {seen}", file=sys.stderr)
        print("ui_groups_view=pass")
    return 0


if __name__ == "__main__":
    sys.exit(main())
