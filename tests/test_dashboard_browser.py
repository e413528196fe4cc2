"""The web page of `lightsweep serve`: its files served without a token (and nothing else), the key that admits a
browser to a job's optuna-dashboard, and, in real headless Chromium (Debian's package, driven by Playwright)
against a real server launching real digits sweeps: the token asked once, a sweep submitted through the form
and followed live without reloading, its best value as the API answers it, the ZIP downloaded, a second job
stopped from its page, a bad value answered beside its field with no job created, optuna-dashboard opened,
screenshots at desktop and phone sizes, and the delay from an epoch event to the page."""

from __future__ import annotations

import io
import os
import re
import statistics
import uuid
import zipfile
from pathlib import Path

import httpx
import pytest
from service_server import TINY, TOKEN, Server, wait_for_state

from conftest import SHARED_DATA

try:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # the browser tests skip, saying so
    sync_playwright = None

CHROMIUM = Path(os.environ.get("LIGHTSWEEP_CHROMIUM", "/usr/bin/chromium"))
DESKTOP, PHONE = {"width": 1280, "height": 800}, {"width": 390, "height": 844}
LIVE_S = 240_000  # ms Playwright waits for a live change (a sweep on a busy 2-core machine)

# Every (trial number, state) a trial row of the job page shows, recorded by the page itself as it changes:
# the rows are seen appearing and finishing, not only their final state.
RECORD_ROW_STATES = """
window.__rowStates = [];
new MutationObserver((changes) => {
  for (const change of changes) {
    const rows = change.type === 'attributes' ? [change.target] : [...change.addedNodes];
    for (const row of rows) {
      if (!row.matches?.('#trials tr[data-number][data-state]')) continue;
      window.__rowStates.push([+row.dataset.number, row.dataset.state]);
    }
  }
}).observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-state'] });
"""


@pytest.fixture(scope="module")
def output_dir(tmp_path_factory) -> Path:
    """Screenshots go to LIGHTSWEEP_BROWSER_OUT when set (kept for the closing note), else a temp dir."""
    folder = Path(os.environ["LIGHTSWEEP_BROWSER_OUT"]) if "LIGHTSWEEP_BROWSER_OUT" in os.environ else None
    folder = folder or tmp_path_factory.mktemp("browser")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    running = Server(tmp_path_factory.mktemp("service") / "home", SHARED_DATA).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser():
    if sync_playwright is None:
        pytest.skip("Playwright is not installed: pip install -e '.[dev]'")
    if not CHROMIUM.is_file():
        pytest.skip(f"no Chromium at {CHROMIUM}: `make browser` (as root) installs it, or set LIGHTSWEEP_CHROMIUM")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser, server):
    """A signed-in page; every console error and uncaught exception is collected in page.errors."""
    context = browser.new_context(viewport=DESKTOP, accept_downloads=True)
    context.add_init_script(RECORD_ROW_STATES)
    opened = context.new_page()
    opened.errors = []
    opened.on("console", lambda message: message.type == "error" and opened.errors.append(message.text))
    opened.on("pageerror", lambda error: opened.errors.append(f"uncaught: {error}"))
    opened.goto(f"{server.url}/")
    expect(opened.get_by_role("dialog", name="API token")).to_be_visible()
    opened.get_by_label("Token", exact=True).fill(TOKEN)
    opened.get_by_label("Token", exact=True).press("Enter")
    expect(opened.get_by_role("heading", name="Jobs", level=1)).to_be_visible()
    opened.evaluate("window.__loadedOnce = true")  # a reload would lose it
    yield opened
    context.close()


@pytest.fixture
def api(server):
    with server.client() as client:
        yield client


def fill_form(page, **fields: str) -> None:
    page.get_by_role("link", name="New job").first.click()
    expect(page.get_by_label("Dataset")).to_be_enabled()
    for label, value in fields.items():
        control = page.get_by_label(label, exact=True)
        if control.evaluate("e => e.tagName") == "SELECT":
            control.select_option(value)
        else:
            control.fill(value)


def overrides_text(overrides: dict) -> str:
    spelled = {key: str(value).lower() if isinstance(value, bool) else value for key, value in overrides.items()}
    return "\n".join(f"{key}={value}" for key, value in spelled.items())


def job_id_of(page) -> str:
    page.wait_for_url(re.compile(r"#/jobs/[0-9a-f-]{36}$"))
    return page.url.rsplit("/", 1)[-1]


def unlabelled_controls(page) -> list[str]:
    """Buttons, links and form controls with no accessible name (keyboard and screen-reader users need one)."""
    return page.evaluate(
        """() => [...document.querySelectorAll('button, a[href], input, select, textarea')]
          .filter((e) => !e.closest('[hidden]') && e.offsetParent !== null)
          .filter((e) => !(e.labels?.length || e.getAttribute('aria-label') || e.textContent.trim()))
          .map((e) => e.outerHTML.slice(0, 80))"""
    )


def fits_width(page) -> bool:
    """Nothing wider than the window: no sideways scrolling, every chart drawn within it (charts are redrawn
    at the new width after a resize)."""
    try:
        page.wait_for_function(
            """() => document.documentElement.scrollWidth <= innerWidth
              && [...document.querySelectorAll('svg.plot')]
                   .every((chart) => chart.getBoundingClientRect().right <= innerWidth)""",
            timeout=5000,
        )
    except PlaywrightTimeout:
        return False
    return True


def test_the_page_is_served_without_a_token_and_nothing_else_is(tmp_path):
    from fastapi.testclient import TestClient

    from lightsweep.service.app import create_app
    from lightsweep.service.pages import STATIC

    client = TestClient(create_app(tmp_path / "home", TOKEN))  # these routes need no running watcher
    index = client.get("/")
    assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in index.headers["content-security-policy"]  # the page holds the token: no other code
    linked = re.findall(r'(?:src|href)="/static/([^"]+)"', index.text)
    imported = [name for script in STATIC.glob("*.js") for name in re.findall(r"from '\./([^']+)'", script.read_text())]
    assert "app.js" in linked and imported
    for name in {*linked, *imported}:  # every file the page loads is there (a missing module is a blank page)
        served = client.get(f"/static/{name}")
        assert served.status_code == 200, name
        if name.endswith(".js"):
            assert "javascript" in served.headers["content-type"]  # browsers run modules only with this type
    for name in ("../pages.py", "..%2fpages.py", "%2e%2e%2fapp.py", "missing.js", ".hidden", "static"):
        assert client.get(f"/static/{name}").status_code == 404, name
    assert client.post(f"/jobs/{uuid.uuid4()}/optuna-dashboard").status_code == 401  # the API keeps its token


def test_a_jobs_optuna_dashboard_admits_only_the_browser_that_opened_its_link():
    from lightsweep.service.pages import KeyGate

    def dashboard(environ, start_response):
        start_response("200 OK", [])
        return [b"the dashboard"]

    key = "k" * 32
    gate = KeyGate(dashboard, key, cookie="lightsweep-dashboard-a")

    def get(query: str = "", cookie: str = "") -> tuple[str, dict, bytes]:
        answer = {}
        environ = {"PATH_INFO": "/dashboard/", "QUERY_STRING": query, "HTTP_COOKIE": cookie}
        body = b"".join(gate(environ, lambda status, headers: answer.update(status=status, headers=dict(headers))))
        return answer["status"], answer["headers"], body

    for query, cookie in [("", ""), ("key=wrong", ""), ("", "lightsweep-dashboard-a=wrong"), ("", f"other={key}")]:
        assert get(query, cookie)[0] == "403 Forbidden", (query, cookie)
    status, headers, _ = get(f"key={key}")
    assert status == "303 See Other" and headers["Location"] == "/dashboard/"  # the key leaves the address bar
    assert "HttpOnly" in headers["Set-Cookie"] and "SameSite=Strict" in headers["Set-Cookie"]
    assert get(cookie=headers["Set-Cookie"].split(";")[0]) == ("200 OK", {}, b"the dashboard")


@pytest.mark.browser
def test_the_token_is_asked_once_per_browser_session(browser, server):
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    errors = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.goto(f"{server.url}/#/new")
    token = page.get_by_label("Token", exact=True)
    token.fill("not-the-token")
    token.press("Enter")
    expect(page.locator("#token-error")).to_contain_text("The server refused this token")
    assert [e for e in errors if "status of 401" not in e] == []  # the browser logs the refused request itself
    token.fill(TOKEN)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="New job", level=1)).to_be_visible()  # the address's view
    page.reload()
    expect(page.get_by_label("Dataset")).to_be_visible()  # kept for the session: not asked again
    expect(page.get_by_role("dialog", name="API token")).to_be_hidden()
    page.get_by_role("button", name="Forget token").click()
    expect(page.get_by_role("dialog", name="API token")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0
    context.close()


def shows_the_finished_job(page, best: dict) -> None:
    """Wait until the job page shows its end: three finished rows, the API's best value, the importances."""
    expect(page.locator("#trials tbody tr[data-state=COMPLETE]")).to_have_count(3)
    expect(page.locator("#best-value")).to_have_attribute("data-value", page.evaluate("v => String(v)", best["value"]))
    expect(page.get_by_role("figure", name="Parameter importances").locator("rect")).not_to_have_count(0)


@pytest.mark.browser
@pytest.mark.slow
def test_a_bad_value_is_answered_beside_its_field_and_creates_no_job(page, api):
    before = api.get("/jobs").json()["total"]
    fill_form(page, Dataset="digits", Mode="health", **{"Health weight": "2"})
    assert unlabelled_controls(page) == []
    page.get_by_role("button", name="Start job").click()

    refused = api.post("/optimize?validate_only=true", json={"dataset": "digits", "mode": "health", "health_weight": 2})
    (problem,) = refused.json()["detail"]
    assert refused.status_code == 422 and problem["loc"] == ["body", "health_weight"]
    expect(page.locator("#error-health_weight")).to_have_text(problem["msg"])  # the server's message, by its field
    expect(page.get_by_label("Health weight")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Health weight")).to_be_focused()

    # A problem the server finds composing the job's config names its key (objective.name): beside Objective.
    page.get_by_label("Mode", exact=True).select_option("simple")
    page.get_by_label("Objective").select_option("training_time")
    page.get_by_label("Pruner").select_option("median")
    page.get_by_role("button", name="Check").click()
    refused = api.post(
        "/optimize?validate_only=true",
        json={"dataset": "digits", "objective": "training_time", "pruner": "median"},
    )
    (problem,) = refused.json()["detail"]
    assert refused.status_code == 422 and problem["msg"].startswith("objective.name=training_time")
    expect(page.locator("#error-objective")).to_have_text(problem["msg"])
    assert api.get("/jobs").json()["total"] == before  # no job created
    # The browser logs each refused request as a console error: the server's 422 answers are the behaviour here.
    assert [e for e in page.errors if "status of 422" not in e] == []


@pytest.mark.browser
@pytest.mark.slow
def test_a_sweep_from_the_form_fills_in_live_and_matches_the_api(page, api, server, output_dir):
    fill_form(page, Dataset="digits", Model="cnn", Trials="3", **{"Epochs per trial": "1"})
    page.get_by_label("Overrides (optional)").fill(overrides_text(TINY))
    page.get_by_label("Trials").press("Enter")  # submitted from the keyboard
    job_id = job_id_of(page)

    rows = page.locator("#trials tbody tr")
    expect(page.locator("#trials tbody tr[data-state=COMPLETE]")).to_have_count(3, timeout=LIVE_S)
    expect(page.locator(".state-line .badge")).to_have_text("completed", timeout=LIVE_S)
    assert page.evaluate("window.__loadedOnce") is True  # no reload happened
    seen = page.evaluate("window.__rowStates")
    for number in range(3):  # each row appeared while its trial ran and changed when it finished
        states = [state for n, state in seen if n == number]
        assert states[0] == "RUNNING" and states[-1] == "COMPLETE", seen
    assert rows.count() == 3

    best = api.get(f"/jobs/{job_id}/best-trial").json()["trial"]
    shows_the_finished_job(page, best)
    assert float(page.locator("#best-value").get_attribute("data-value")) == best["value"]
    expect(page.locator("#best-command")).to_have_text(best["command"])

    with page.expect_download() as download:
        page.get_by_role("button", name="Download ZIP").click()
    names = zipfile.ZipFile(io.BytesIO(Path(download.value.path()).read_bytes())).namelist()
    assert "report.md" in names and sorted(n for n in names if re.fullmatch(r"\d+/run\.json", n)) == [
        f"{n}/run.json" for n in range(3)
    ]

    page.get_by_role("button", name=f"Trial {best['number']}: show its plots and parameters").click()
    expect(page.locator(".run-plot img")).not_to_have_count(0)
    assert page.locator(".run-plot img").first.evaluate("img => img.src.startsWith('blob:')")

    page.get_by_role("button", name="optuna-dashboard").click()
    link = page.get_by_role("link", name="Open optuna-dashboard ↗").get_attribute("href")
    dashboard = page.context.new_page()
    assert dashboard.goto(link).ok  # the key in the link admits this browser (a cookie), then the page loads
    origin = re.match(r"http://[^/]+", link).group(0)
    assert dashboard.request.get(f"{origin}/api/studies").ok
    assert httpx.get(f"{origin}/api/studies").status_code == 403  # without the key: refused
    dashboard.close()

    delays = page.evaluate("window.__epochDelays")
    assert len(delays) >= 3  # one epoch per trial, each shown as it arrived
    print(f"\nepoch event -> page: median {statistics.median(delays):.3f} s, max {max(delays):.3f} s, n={len(delays)}")

    shots = []
    for size, name in ((DESKTOP, "1280x800"), (PHONE, "390x844")):
        page.set_viewport_size(size)
        page.evaluate("window.scrollTo(0, 0)")
        assert fits_width(page), f"the job page scrolls sideways at {name}"
        shots.append(output_dir / f"job-{name}.png")
        page.screenshot(path=shots[-1], full_page=True)
        page.get_by_role("link", name="Jobs", exact=True).click()
        expect(page.locator(f"#jobs tr[data-job='{job_id}'] .badge")).to_have_text("completed")
        assert fits_width(page), f"the jobs list scrolls sideways at {name}"
        shots.append(output_dir / f"jobs-{name}.png")
        page.screenshot(path=shots[-1], full_page=True)
        page.go_back()
        shows_the_finished_job(page, best)
    print("screenshots:", *shots, sep="\n  ")
    assert unlabelled_controls(page) == []
    assert page.errors == []


@pytest.mark.browser
@pytest.mark.slow
def test_a_single_run_from_the_form_shows_its_record_and_plots(page, api):
    fill_form(page, Dataset="digits", Kind="run", Model="cnn", **{"Epochs per trial": "1"})
    expect(page.get_by_label("Trials", exact=True)).to_be_disabled()  # a run takes no sweep settings
    page.get_by_label("Overrides (optional)").fill(overrides_text(TINY))
    page.get_by_role("button", name="Start job").click()
    job_id = job_id_of(page)
    expect(page.locator(".state-line .badge")).to_have_text("completed", timeout=LIVE_S)
    assert api.get(f"/jobs/{job_id}").json()["kind"] == "run"
    expect(page.locator("#trials")).to_be_hidden()
    run = api.get(f"/jobs/{job_id}/files/sweep/run.json").json()
    panel = page.get_by_role("region", name="The run")
    expect(panel.locator("dd").first).to_have_text(run["status"])
    expect(panel).to_contain_text("val/acc")
    expect(panel.locator(".run-plot img")).to_have_count(len(run["plots"]["files"]))
    assert page.errors == []


@pytest.mark.browser
@pytest.mark.slow
def test_a_job_page_follows_its_job_through_a_server_restart_and_stops_it(page, api, server):
    fill_form(page, Dataset="digits", Model="cnn", Trials="3", **{"Epochs per trial": "500"})
    page.get_by_label("Overrides (optional)").fill(overrides_text(TINY))
    page.get_by_role("button", name="Start job").click()
    job_id = job_id_of(page)
    epochs = page.locator("#trials tr[data-number='0'] [data-col=epochs]")
    expect(epochs).to_have_text(re.compile(r"^[1-9]\d*$"), timeout=LIVE_S)  # mid-trial

    requests = []

    def asked(request):
        requests.append(request.url)

    page.on("request", asked)
    seen = int(epochs.text_content())
    expect(epochs).not_to_have_text(str(seen))  # more epochs arrive...
    page.wait_for_timeout(1000)
    assert requests == []  # ...through the open event stream: the page asks for nothing
    page.remove_listener("request", asked)
    delays = page.evaluate("window.__epochDelays")
    assert len(delays) >= seen + 1
    print(f"\nepoch event -> page (one long trial): median {statistics.median(delays):.3f} s, n={len(delays)}")

    live = page.locator("p.live")
    server.kill()  # the stream breaks; the job's process lives on in its own session
    expect(live).to_have_text(re.compile("reconnecting"))
    before_restart = int(epochs.text_content())
    server.start()
    expect(live).to_have_text(re.compile("^Live"), timeout=LIVE_S)  # resumed from its Last-Event-ID
    expect(epochs).not_to_have_text(str(before_restart), timeout=LIVE_S)

    page.get_by_role("button", name="Stop", exact=True).click()
    expect(page.locator(".state-line .badge")).to_have_text("stopped", timeout=LIVE_S)
    assert wait_for_state(api, job_id, ("stopped",), timeout=30)["state"] == "stopped"
    expect(page.locator("#trials tr[data-number='0']")).to_have_attribute("data-state", "FAIL")
    expect(page.locator("#trials tr[data-number='0'] [data-col=state]")).to_contain_text("stopped")
    (first,) = [t for t in api.get(f"/jobs/{job_id}/trials").json()["trials"] if t["number"] == 0]
    expect(epochs).to_have_text(str(len(first["epochs"])))  # every epoch once: none missed or repeated
    expect(page.get_by_role("button", name="Resume")).to_be_enabled()
    expect(page.get_by_role("button", name="Stop", exact=True)).to_be_disabled()
    assert page.evaluate("window.__loadedOnce") is True
    # The browser itself logs the stream cut by the kill and each reconnection refused while the server was down.
    expected = ("net::ERR_INCOMPLETE_CHUNKED_ENCODING", "net::ERR_CONNECTION_REFUSED")
    assert [e for e in page.errors if not e.endswith(expected)] == []
