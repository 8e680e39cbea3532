"""The seed's experiment, clicked through the dashboard in headless Chromium (issue 16).

Run by server/tests/dashboard_browser.rs inside the daemon's throwaway network namespace, which
has no route anywhere. Selenium drives the system Chromium through the system chromedriver
(never a downloaded one). Environment:

  BASE       the daemon's TCP listener, e.g. http://127.0.0.1:2375
  LOGIN_URL  a one-time login URL from `netbridge login-url`
  SOCKET     the daemon's Unix socket (for the docker CLI's disconnect)
  SHOTS      where screenshots go
  SUFFIX     a random suffix for this run's names
"""

import json
import os
import subprocess
import sys
import tempfile
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

BASE = os.environ["BASE"]
SHOTS = os.environ.get("SHOTS", "screenshots")
SUFFIX = os.environ.get("SUFFIX", "")
NET = f"mynet{SUFFIX}"
C1, C2 = f"ui1{SUFFIX}", f"ui2{SUFFIX}"


def browser():
    o = webdriver.ChromeOptions()
    o.binary_location = "/usr/bin/chromium"
    for arg in [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", "--window-size=1400,1000",
        f"--user-data-dir={tempfile.mkdtemp(prefix='nb-chromium-')}",
    ]:
        o.add_argument(arg)
    o.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)


def wait(d, what, cond, timeout=10):
    """Polls `cond` until it is true; the page redraws often, so a stale element is retried."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            got = cond()
            if got:
                return got
        except Exception as e:  # noqa: BLE001 - stale elements between redraws
            last = e
        time.sleep(0.02)
    shot(d, f"failed-{what}")
    raise AssertionError(f"timed out waiting for {what} (last error: {last})")


def shot(d, name):
    os.makedirs(SHOTS, exist_ok=True)
    d.save_screenshot(os.path.join(SHOTS, f"{name}.png"))


def step(msg):
    print(f"- {msg}", flush=True)


def js(d, script, *args):
    return d.execute_script(script, *args)


def loads(d):
    return int(js(d, "return Number(document.body.dataset.loads || 0)"))


def view(d, name):
    d.find_element(By.ID, f"nav-{name}").click()
    wait(d, f"view {name}", lambda: d.find_element(By.ID, f"view-{name}").is_displayed())


def tab_to(d, element_id, limit=60):
    """Presses Tab until `element_id` has the focus: the keyboard alone reaches it."""
    for _ in range(limit):
        if js(d, "return document.activeElement && document.activeElement.id") == element_id:
            return
        webdriver.ActionChains(d).send_keys(Keys.TAB).perform()
    raise AssertionError(f"Tab never reached #{element_id}")


def type_keys(d, text):
    webdriver.ActionChains(d).send_keys(text).perform()


def assert_labelled(d, form_id):
    unlabelled = js(d, """
        return [...document.querySelectorAll(`#${arguments[0]} input, #${arguments[0]} select`)]
          .filter((e) => !e.labels || e.labels.length === 0 || !e.labels[0].textContent.trim())
          .map((e) => e.id || e.name);""", form_id)
    assert not unlabelled, f"inputs without a label in #{form_id}: {unlabelled}"


def row_text(d, table, name):
    return js(d, "const r = document.querySelector(`#${arguments[0]} tr[data-name='${arguments[1]}']`);"
                 "return r ? r.textContent : '';", table, name)


def links(d, network):
    return js(d, "return [...document.querySelectorAll(`#topology line.link`)]"
                 ".filter((l) => l.dataset.network === arguments[0])"
                 ".map((l) => [l.dataset.container, l.dataset.veth, l.dataset.bridge]);", network)


def wrong_token(d):
    step("a wrong token: the page says so and shows nothing else")
    d.get(f"{BASE}/ui/")
    wait(d, "the login form", lambda: d.find_elements(By.ID, "token"))
    d.find_element(By.ID, "token").send_keys("not-the-token" + Keys.ENTER)
    wait(d, "the refusal", lambda: "Invalid token." in d.find_element(By.ID, "login-message").text)
    assert not d.find_elements(By.ID, "networks-table"), "the dashboard showed through"
    assert not d.get_cookies(), f"cookies after a refusal: {d.get_cookies()}"
    shot(d, "login-wrong-token")


def create_network_by_keyboard(d):
    step("create a network with the keyboard alone")
    view(d, "networks")
    assert_labelled(d, "create-network")
    js(d, "document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0)")
    tab_to(d, "cn-name")
    type_keys(d, NET)
    webdriver.ActionChains(d).send_keys(Keys.TAB).perform()
    type_keys(d, "172.30.0.0/24")
    webdriver.ActionChains(d).send_keys(Keys.ENTER).perform()
    wait(d, "the new network's row",
         lambda: js(d, "return !!document.querySelector(`#networks-table tr[data-name='${arguments[0]}']`)", NET))
    shot(d, "networks")


def create_sandboxes(d):
    step("two sandboxes")
    view(d, "containers")
    for name in (C1, C2):
        f = d.find_element(By.ID, "cs-name")
        f.send_keys(name + Keys.ENTER)
        wait(d, f"sandbox {name}",
             lambda: js(d, "return !!document.querySelector(`#containers-table tr[data-name='${arguments[0]}']`)", name))


def connect_by_keyboard(d):
    step("connect both, the second with a static address and aliases, by keyboard")
    view(d, "containers")
    assert_labelled(d, "connect")
    net_id = js(d, "return [...document.querySelectorAll('#cc-network option')]"
                   ".find((o) => o.textContent === arguments[0]).value", NET)
    for name, ip, aliases in ((C1, "", ""), (C2, "172.30.0.20", "web,db")):
        js(d, "document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0)")
        # A select is operated with the keyboard by typing its option's text.
        tab_to(d, "cc-network")
        type_keys(d, NET)
        assert d.find_element(By.ID, "cc-network").get_attribute("value") == net_id
        webdriver.ActionChains(d).send_keys(Keys.TAB).perform()
        type_keys(d, name)
        webdriver.ActionChains(d).send_keys(Keys.TAB).perform()
        type_keys(d, ip)
        webdriver.ActionChains(d).send_keys(Keys.TAB, Keys.TAB).perform()
        type_keys(d, aliases)
        webdriver.ActionChains(d).send_keys(Keys.ENTER).perform()
        wait(d, f"{name} connected", lambda: NET in row_text(d, "containers-table", name))
    assert d.find_element(By.ID, "error").is_displayed() is False
    shot(d, "containers")


def topology_shows_two_veths(d):
    step("the topology: two veths on one bridge")
    view(d, "topology")
    wait(d, "two links", lambda: len(links(d, NET)) == 2)
    got = links(d, NET)
    assert {c for c, _, _ in got} == {C1, C2}, got
    assert len({b for _, _, b in got}) == 1, f"not one bridge: {got}"
    assert all(v.startswith("veth") for _, v, _ in got), got
    shot(d, "topology")
    return got[0][2]


def diagnose(d, expect, received):
    view(d, "diagnose")
    for field, value in (("dg-source", C1), ("dg-target", C2)):
        e = d.find_element(By.ID, field)
        e.clear()
        e.send_keys(value)
    js(d, "document.getElementById('diagnosis').textContent = ''")
    d.find_element(By.ID, "dg-submit").click()
    wait(d, f"verdict {expect}", lambda: d.find_elements(By.ID, "verdict"), timeout=15)
    text = d.find_element(By.ID, "diagnosis").text
    assert expect in d.find_element(By.ID, "verdict").text, text
    want = f"{received} received" if received is not None else "No probe was sent"
    assert want in text, text
    return text


def disconnect_live(d):
    step("disconnect one with the docker CLI: the page follows within a second")
    view(d, "topology")
    env = dict(os.environ, DOCKER_HOST=f"unix://{os.environ['SOCKET']}",
               DOCKER_CONFIG=tempfile.mkdtemp(prefix="nb-docker-"))
    subprocess.run(["docker", "network", "disconnect", NET, C2], check=True, env=env,
                   capture_output=True)
    started = time.monotonic()
    wait(d, "the link to go", lambda: len(links(d, NET)) == 1, timeout=5)
    took = time.monotonic() - started
    assert took < 1.0, f"the page took {took:.2f} s to show the disconnect"
    step(f"  shown {took * 1000:.0f} ms after the CLI returned")


def filters(d):
    step("the table filters as docker network ls does, by the daemon's own rules")
    view(d, "networks")
    box = d.find_element(By.ID, "network-filter")
    box.send_keys(f"name={NET} driver=bridge")
    wait(d, "one row", lambda: js(d, "return document.querySelectorAll('#networks-table tbody tr').length") == 1)
    assert NET in d.find_element(By.ID, "networks-table").text
    box.clear()
    box.send_keys("bogus=1")
    wait(d, "Docker's message", lambda: "invalid filter 'bogus'" in d.find_element(By.ID, "error").text)
    box.clear()
    box.send_keys(" ")
    wait(d, "every row again", lambda: js(d, "return document.querySelectorAll('#networks-table tbody tr').length") >= 4)


def network_detail(d):
    view(d, "networks")
    d.find_element(By.CSS_SELECTOR, f"#networks-table tr[data-name='{NET}'] button[data-action='detail']").click()
    wait(d, "the detail", lambda: C1 in d.find_element(By.ID, "network-detail").text)
    shot(d, "network-detail")


def same_origin_only(d):
    step("every request went to the page's own origin")
    urls = set()
    ours = set()
    for entry in d.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") == "Network.requestWillBeSent":
            url = msg["params"]["request"]["url"]
            urls.add(url)
            if msg["params"].get("documentURL", "").startswith(BASE):
                ours.add(url)
    # Anything our pages asked for, and any network request at all (Chromium's own new-tab
    # page loads chrome:// resources, which are not requests to anywhere).
    network = {u for u in urls if u.split(":", 1)[0] in ("http", "https", "ws", "wss")}
    foreign = sorted(u for u in ours | network if not u.startswith(BASE + "/"))
    assert not foreign, f"requests elsewhere: {foreign}"
    assert any(u.startswith(f"{BASE}/netbridge/topology") for u in urls), urls
    assert any(u.startswith(f"{BASE}/events") for u in urls), urls
    # Refused requests the scenario made on purpose (a wrong token, a duplicate name) are
    # logged as failed loads; script errors and CSP violations are what must not happen.
    problems = [e["message"] for e in d.get_log("browser")
                if e["level"] == "SEVERE" and "Failed to load resource" not in e["message"]]
    assert not problems, f"console errors (CSP?): {problems}"


def main():
    d = browser()
    try:
        wrong_token(d)
        step("log in with the one-time URL")
        d.get(os.environ["LOGIN_URL"])
        wait(d, "the dashboard", lambda: d.current_url.startswith(f"{BASE}/ui/") and loads(d) >= 1)
        cookie = d.get_cookie("netbridge_session")
        assert cookie and cookie["httpOnly"] and cookie.get("sameSite") == "Strict", cookie
        assert js(d, "return document.cookie") == "", "the session cookie is readable by script"
        assert js(d, "return window.localStorage.length") == 0
        wait(d, "live events", lambda: d.find_element(By.ID, "live").text == "live")
        create_network_by_keyboard(d)
        create_sandboxes(d)
        connect_by_keyboard(d)
        topology_shows_two_veths(d)
        step("diagnose: reachable, and the probe succeeds")
        diagnose(d, "reachable", 3)
        shot(d, "diagnose-reachable")
        filters(d)
        network_detail(d)
        disconnect_live(d)
        step("diagnose again: why not")
        text = diagnose(d, "blocked", None)
        assert "attached to no network" in text, text
        shot(d, "diagnose-blocked")
        step("an error shows Docker's message")
        view(d, "networks")
        d.find_element(By.ID, "cn-name").send_keys(NET + Keys.ENTER)
        wait(d, "the error", lambda: d.find_element(By.ID, "error").is_displayed())
        err = d.find_element(By.ID, "error").text
        assert "already exists" in err, err
        same_origin_only(d)
        step("clean up by clicking")
        view(d, "containers")
        for name in (C1, C2):
            d.find_element(By.CSS_SELECTOR, f"#containers-table tr[data-name='{name}'] "
                                            "button[data-action='remove-container']").click()
            wait(d, f"{name} gone", lambda: not d.find_elements(
                By.CSS_SELECTOR, f"#containers-table tr[data-name='{name}']"))
        view(d, "networks")
        d.find_element(By.CSS_SELECTOR, f"#networks-table tr[data-name='{NET}'] "
                                        "button[data-action='remove-network']").click()
        wait(d, "the network gone", lambda: not d.find_elements(
            By.CSS_SELECTOR, f"#networks-table tr[data-name='{NET}']"))
        print("ok")
    finally:
        d.quit()


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"FAILED: {e}", file=sys.stderr)
        sys.exit(1)
