"""The dashboard's speed with many networks (issue 16), in headless Chromium.

Run by `dashboard_benchmark` in server/tests/dashboard_browser.rs (ignored by default) against a
daemon it filled with networks and endpoints. Measures, several times each:
  - navigation → the networks table drawn with every network, and painted;
  - an API connect (over the Unix socket) → the page showing it (the network's endpoint count
    changes in the table), counted from the moment the request is sent.
Prints one JSON line of figures. Environment: BASE, LOGIN_URL, SOCKET, NETWORK, CONTAINER, RUNS.
"""

import http.client
import json
import os
import socket
import statistics
import time

from dashboard import browser, wait, js, shot

BASE = os.environ["BASE"]
RUNS = int(os.environ.get("RUNS", "5"))


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost")
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(self.unix_path)
        self.sock = s


def post(path, body):
    c = UnixConnection(os.environ["SOCKET"])
    c.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    r = c.getresponse()
    r.read()
    assert r.status == 200, (path, r.status)


def first_draw(d):
    d.get(f"{BASE}/ui/?run={time.monotonic()}#networks")
    wait(d, "the painted table", lambda: js(d, "return document.body.dataset.networksPainted"), 30)
    drawn = float(js(d, "return document.body.dataset.networksDrawn"))
    painted = float(js(d, "return document.body.dataset.networksPainted"))
    rows = js(d, "return document.querySelectorAll('#networks-table tbody tr').length + ' rows drawn; '"
                 "+ document.getElementById('networks-count').textContent")
    fetched = js(d, "const e = performance.getEntriesByType('resource')"
                    ".find((r) => r.name.endsWith('/netbridge/topology'));"
                    "return e ? [e.responseEnd, e.responseEnd - e.requestStart, e.encodedBodySize] : null;")
    return drawn, painted, rows, fetched


WATCH = """
const [net, want] = arguments;
window.__shown = null;
const cell = () => document.querySelector(`#networks-table tr[data-name='${net}'] td.num`);
const check = () => {
  const c = cell();
  if (window.__shown === null && c && c.textContent === want) window.__shown = Date.now();
};
new MutationObserver(check).observe(document.querySelector('#networks-table tbody'),
  { childList: true, subtree: true, characterData: true });
check();
"""


def connect_shown(d, net, container, verb, count):
    """Connects (or disconnects) and returns ms from sending the request to the page showing it."""
    js(d, WATCH, net, str(count))
    sent = time.time() * 1000
    post(f"/networks/{net}/{verb}", {"Container": container})
    returned = time.time() * 1000
    try:
        wait(d, "the page to show it", lambda: js(d, "return window.__shown"), 10)
    except AssertionError:
        cell = js(d, "const c = document.querySelector(`#networks-table tr[data-name='${arguments[0]}'] td.num`);"
                     "return [c && c.textContent, document.body.dataset.loads, location.href];", net)
        raise AssertionError(f"{verb} {net}: want {count}, the page shows {cell}") from None
    shown = float(js(d, "return window.__shown"))
    return shown - sent, returned - sent


def topology_at_scale(d, net):
    """Draws the topology of everything, then of one network; ms each (script work only)."""
    d.find_element("id", "nav-topology").click()
    wait(d, "the topology", lambda: js(d, "return !!document.querySelector('#topology svg')"))
    took_all = js(d, "const t = performance.now(); renderTopology(); return performance.now() - t;")
    shot(d, "topology-1000-networks")
    took_one = js(d, """
        const sel = document.getElementById('topology-network');
        sel.value = [...sel.options].find((o) => o.textContent === arguments[0]).value;
        const t = performance.now(); renderTopology(); return performance.now() - t;""", net)
    shot(d, "topology-one-of-1000-networks")
    return round(took_all), round(took_one)


def main():
    d = browser()
    try:
        d.get(os.environ["LOGIN_URL"])
        wait(d, "the dashboard", lambda: js(d, "return document.body.dataset.networksPainted"), 30)
        draws = [first_draw(d) for _ in range(RUNS)]
        wait(d, "live events", lambda: js(d, "return document.getElementById('live').textContent") == "live")
        net, container = os.environ["NETWORK"], os.environ["CONTAINER"]
        base = int(js(d, "return document.querySelector(`#networks-table tr[data-name='${arguments[0]}'] td.num`).textContent", net))
        shown, calls = [], []
        for _ in range(RUNS):
            s, c = connect_shown(d, net, container, "connect", base + 1)
            shown.append(s)
            calls.append(c)
            connect_shown(d, net, container, "disconnect", base)
        topology = topology_at_scale(d, net)
        print(json.dumps({
            "topology_all_ms": topology[0],
            "topology_one_network_ms": topology[1],
            "rows": draws[-1][2],
            "drawn_ms": [round(x[0]) for x in draws],
            "painted_ms": [round(x[1]) for x in draws],
            "connect_shown_ms": [round(x) for x in shown],
            "connect_call_ms": [round(x) for x in calls],
            "topology_loaded_at_ms": [round(x[3][0]) for x in draws if x[3]],
            "topology_request_ms": [round(x[3][1]) for x in draws if x[3]],
            "topology_bytes": draws[-1][3][2] if draws[-1][3] else None,
            "median_painted_ms": round(statistics.median(x[1] for x in draws)),
            "median_connect_shown_ms": round(statistics.median(shown)),
        }), flush=True)
    finally:
        d.quit()


if __name__ == "__main__":
    main()
