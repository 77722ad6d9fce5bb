"""How long the writ console's views take to load with 1,000 functions and 10,000 audit
events: starts `writ dev` on a fresh data directory, registers 1,000 functions and reports
10,000 calls between them (POST /v1/audit/events, as a gateway does), then loads each view
in headless Chromium N times and prints the median of the Performance API's marks, measured
from the navigation's start:

  rendered   the view is on screen with its data (functions listed, graph drawn, the audit
             log read and its newest events listed)
  complete   what the view adds from the whole audit log is in too (SVIDs and last logins,
             call counts on the graph's edges); for the audit view, the chain verified

Usage: bench/console_load.py [WRIT_BINARY] [RUNS]   (default target/release/writ, 7 runs)
With CONSOLE_BENCH_DIAG=1 it also prints, for one load of each view, the navigation's and
each request's timings (where the time goes).
Needs a Python with selenium, /usr/bin/chromium and /usr/bin/chromedriver.
"""

import json
import os
import random
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

BINARY = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.environ.get("CARGO_TARGET_DIR", "target"), "release", "writ")
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 7
FUNCTIONS = 1000
EVENTS = 10000


def start_dev(data):
    dev = subprocess.Popen(
        [BINARY, "dev", "--data-dir", data, "--listen", "127.0.0.1:0", "--gateway-listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "WRIT_DEV_PYTHON": "/nonexistent/python"})
    out = []
    for line in dev.stdout:
        out.append(line)
        if "Serving until Ctrl-C" in line:
            break
    console = next(l.split()[1] for l in out if l.startswith("Console: "))
    return dev, console[: -len("/ui/")]


def main():
    data = tempfile.mkdtemp(prefix="writ-console-bench-")
    dev, url = start_dev(os.path.join(data, "data"))
    try:
        with open(os.path.join(data, "data", "admin-token")) as f:
            token = f.read().strip()
        tls = ssl.create_default_context(cafile=os.path.join(data, "data", "ca.pem"))

        def api(method, path, body):
            req = urllib.request.Request(url + path, data=json.dumps(body).encode(), method=method,
                                         headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
            with urllib.request.urlopen(req, context=tls) as r:
                return r.read()

        names = [f"fn-{i:04d}" for i in range(FUNCTIONS - 2)]  # writ dev has orders and payments
        for name in names:
            api("POST", "/v1/functions", {"name": name})
        rng = random.Random(7)
        pairs = [(rng.choice(names), rng.choice(names)) for _ in range(300)]
        for (s, d) in pairs[:100]:
            try:
                api("PUT", "/v1/intentions", {"source": s, "destination": d, "action": rng.choice(["allow", "deny"])})
            except urllib.error.HTTPError:
                pass
        for batch in range(EVENTS // 1000):
            events = []
            for k in range(1000):
                s, d = rng.choice(pairs)
                denied = rng.random() < 0.2
                events.append({"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                               "actor": f"spiffe://dev.writ.local/fn/{s}", "authenticatedBy": "mtls",
                               "action": "writ:Invoke", "resource": f"writ:fn/{d}",
                               "outcome": "denied" if denied else "allowed",
                               "reason": "GET /x: denied: no intention allows it (default deny)" if denied else None,
                               "latencyUs": 300})
            for e in events:
                if e["reason"] is None:
                    del e["reason"]
            api("POST", "/v1/audit/events", {"events": events})
        time.sleep(3)  # the audit log commits its batches

        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1440,900"]:
            options.add_argument(arg)
        options.accept_insecure_certs = True
        driver = webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=options)
        try:
            driver.get(url + "/ui/")
            WebDriverWait(driver, 60).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-rendered") == "sign-in")
            driver.find_element(By.ID, "token").send_keys(token + Keys.ENTER)
            WebDriverWait(driver, 60).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-rendered") == "functions")
            rows = len(driver.find_elements(By.CSS_SELECTOR, "tr[data-function]"))
            print(f"{rows} functions listed")
            marks = {"functions": "complete:functions", "intentions": "complete:intentions", "audit": "verified:audit"}
            print("| view | rendered (median) | complete (median) | runs |")
            print("|---|---|---|---|")
            for view, complete in marks.items():
                rendered, completed = [], []
                for _ in range(RUNS):
                    driver.get("about:blank")
                    driver.get(f"{url}/ui/#{view}")
                    get = lambda name: driver.execute_script(
                        "const m = performance.getEntriesByName(arguments[0]); return m.length ? m[0].startTime : null;", name)
                    WebDriverWait(driver, 120, poll_frequency=0.05).until(lambda d: get(f"rendered:{view}") is not None and get(complete) is not None)
                    rendered.append(get(f"rendered:{view}"))
                    completed.append(get(complete))
                print(f"| {view} | {statistics.median(rendered):.0f} ms | {statistics.median(completed):.0f} ms | {RUNS} |")
            if os.environ.get("CONSOLE_BENCH_DIAG"):
                for view in marks:
                    driver.get("about:blank")
                    driver.get(f"{url}/ui/#{view}")
                    time.sleep(3)
                    print(view, json.dumps(driver.execute_script(
                        "return [performance.getEntriesByType('navigation')[0].toJSON()].concat(performance.getEntriesByType('resource').map(e => ({n: e.name.slice(-40), s: Math.round(e.startTime), rs: Math.round(e.responseStart), e: Math.round(e.responseEnd), size: e.transferSize}))).concat(performance.getEntriesByType('mark').map(m => ({m: m.name, t: Math.round(m.startTime)})))"), indent=None))
            audit_count = driver.find_element(By.ID, "audit-count").text
            print(audit_count)
        finally:
            driver.quit()
    finally:
        dev.terminate()
        dev.wait()


if __name__ == "__main__":
    main()
