"""Drives the writ console in a real headless Chromium (Debian's chromium and chromedriver),
against a running `writ dev`: run by crates/writ/tests/console.rs, which passes

  WRIT_CONSOLE_URL          the server, https://127.0.0.1:PORT
  WRIT_CONSOLE_DATA         writ dev's data directory (ca.pem, admin-token, orders.pem, ...)
  WRIT_CONSOLE_GATEWAY      the gateway, https://127.0.0.1:PORT
  WRIT_CONSOLE_SCREENSHOTS  optional: a directory to write the main views' screenshots to
  WRIT_CHROMIUM, WRIT_CHROMEDRIVER  the browser and its driver

Tokens are read from files, never passed on a command line. Every wait is for something
the page shows, with a generous limit; nothing is timed.
"""

import http.server
import json
import os
import ssl
import subprocess
import sys
import threading
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

URL = os.environ["WRIT_CONSOLE_URL"].rstrip("/")
DATA = os.environ["WRIT_CONSOLE_DATA"]
GATEWAY = os.environ["WRIT_CONSOLE_GATEWAY"].rstrip("/")
SHOTS = os.environ.get("WRIT_CONSOLE_SCREENSHOTS")
CA = os.path.join(DATA, "ca.pem")
WAIT = 60


def admin_token():
    with open(os.path.join(DATA, "admin-token")) as f:
        return f.read().strip()


TLS = ssl.create_default_context(cafile=CA)


def request(method, path, body=None, headers=None):
    """An API call outside the browser: (status, parsed JSON or text)."""
    data = None
    headers = dict(headers or {})
    if body is not None:
        if isinstance(body, (bytes, str)):
            data = body.encode() if isinstance(body, str) else body
        else:
            data = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(URL + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, context=TLS) as r:
            status, text = r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode()
    try:
        return status, json.loads(text) if text else None
    except ValueError:
        return status, text


def check(condition, what):
    if not condition:
        raise AssertionError(what)
    print(f"ok: {what}", flush=True)


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("WRIT_CHROMIUM", "/usr/bin/chromium")
    for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1440,900", "--force-prefers-reduced-motion"]:
        options.add_argument(arg)
    # writ dev's CA is its own: the browser is told to accept its certificate (the
    # connection is still TLS, so the session cookie, which is Secure, is kept).
    options.accept_insecure_certs = True
    service = Service(executable_path=os.environ.get("WRIT_CHROMEDRIVER", "/usr/bin/chromedriver"))
    return webdriver.Chrome(service=service, options=options)


def shot(driver, name):
    if SHOTS:
        driver.execute_script("window.scrollTo(0, 0)")
        os.makedirs(SHOTS, exist_ok=True)
        driver.save_screenshot(os.path.join(SHOTS, f"{name}.png"))


def wait(driver, what, condition):
    try:
        return WebDriverWait(driver, WAIT, ignored_exceptions=(NoSuchElementException, StaleElementReferenceException, IndexError)).until(lambda d: condition(d))
    except Exception as e:
        raise AssertionError(f"waiting for {what}: {e!r}\npage: {driver.find_element(By.TAG_NAME, 'body').text[:2000]}")


def rendered(driver, view):
    wait(driver, f"the {view} view", lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-rendered") == view)


def sign_in(driver, token):
    driver.get(URL + "/ui/")
    rendered(driver, "sign-in")
    field = driver.find_element(By.ID, "token")
    field.send_keys(token)
    field.send_keys(Keys.ENTER)
    rendered(driver, "functions")


def function_rows(driver):
    return {r.get_attribute("data-function"): r for r in driver.find_elements(By.CSS_SELECTOR, "tr[data-function]")}


def edge(driver, source, destination):
    return driver.find_element(By.CSS_SELECTOR, f'g.edge[data-source="{source}"][data-destination="{destination}"]')


def denied_call():
    """orders GETs /payments/charge through the gateway: its intention allows only POST."""
    out = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", CA,
         "--cert", os.path.join(DATA, "orders.pem"), "--key", os.path.join(DATA, "orders.key"),
         GATEWAY + "/payments/charge"],
        capture_output=True, text=True, check=True)
    check(out.stdout == "403", f"the gateway refused orders' GET /payments/charge ({out.stdout})")


class EvilSite(http.server.BaseHTTPRequestHandler):
    """Another site, whose page posts a form to the console's API as soon as it loads."""

    def do_GET(self):
        page = f"""<!doctype html><title>evil</title>
<form id=f method=post action="{URL}/v1/revocations" enctype="text/plain">
<input name='{{"function":"payments","x":"' value='"}}'></form>
<script>document.getElementById('f').submit()</script>"""
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(page.encode())

    def log_message(self, *args):
        pass


def main():
    token = admin_token()

    # No session: no data.
    status, body = request("GET", "/v1/functions")
    check(status == 401 and "functions" not in json.dumps(body), f"no session: 401 and no data ({status} {body})")
    status, body = request("GET", "/v1/functions", headers={"Cookie": "__Host-writ_session=not-a-session"})
    check(status == 401 and "functions" not in json.dumps(body), f"an unknown session: 401 and no data ({status})")
    status, _ = request("GET", "/ui/")
    check(status == 200, "the console's page is public")

    driver = browser()
    try:
        # The page loads under a strict CSP with no inline script.
        sign_in(driver, token)
        rows = function_rows(driver)
        check({"orders", "payments"} <= set(rows), f"the demo functions are listed ({sorted(rows)})")
        check(rows["orders"].get_attribute("data-revoked") == "false", "orders is live")
        wait(driver, "orders' SVIDs from the audit log",
             lambda d: "exp." in function_rows(d)["orders"].text)
        check("spiffe://dev.writ.local/fn/orders" in rows["orders"].text, "orders' SPIFFE ID is shown")
        shot(driver, "functions")

        # The intention graph, with the calls the demo made counted on its edges.
        driver.get(URL + "/ui/#intentions")
        rendered(driver, "intentions")
        wait(driver, "the calls counted", lambda d: d.find_element(By.CSS_SELECTOR, "svg.graph").get_attribute("data-counted") == "true")
        before = int(edge(driver, "orders", "payments").get_attribute("data-denied"))
        check(before >= 1, f"orders -> payments shows the demo's denied call ({before})")
        denied_call()
        wait(driver, "the denied call on its edge",
             lambda d: int(edge(d, "orders", "payments").get_attribute("data-denied")) > before)
        check(True, "the new denied call appeared on orders -> payments")
        e = edge(driver, "orders", "payments")
        title = e.find_element(By.TAG_NAME, "title").get_attribute("textContent")
        check("allow POST" in title and "/payments/charge" in title, f"the edge's title gives its L7 permissions ({title})")
        # By keyboard: the edge takes the focus, and Enter opens it.
        driver.execute_script("arguments[0].focus()", e)
        driver.switch_to.active_element.send_keys(Keys.ENTER)
        wait(driver, "the intention editor", lambda d: d.find_elements(By.ID, "i-permissions"))

        # Check a proposed call against the intention as edited, before saving.
        driver.find_element(By.CSS_SELECTOR, "#c-method option[value='GET']").click()
        path = driver.find_element(By.ID, "c-path")
        path.clear()
        path.send_keys("/payments/charge")
        driver.find_element(By.ID, "check-call").click()
        wait(driver, "the check's verdict", lambda d: d.find_element(By.ID, "check-verdict").get_attribute("data-decision") == "denied")
        perms = driver.find_element(By.ID, "i-permissions")
        perms.clear()
        perms.send_keys('[{"methods": ["GET", "POST"], "pathExact": "/payments/charge"}]')
        driver.find_element(By.ID, "check-call").click()
        wait(driver, "the proposed intention's verdict", lambda d: d.find_element(By.ID, "check-verdict").get_attribute("data-decision") == "allowed")
        check(True, "a proposed intention is checked before it is saved")
        status, listed = request("GET", "/v1/intentions", headers={"Authorization": f"Bearer {token}"})
        stored = [i for i in listed["intentions"] if i["source"] == "orders" and i["destination"] == "payments"][0]
        check(stored["permissions"][0]["methods"] == ["POST"], "nothing was saved by checking")
        shot(driver, "intentions")

        # The newest denied call's audit event, with its reason.
        link = wait(driver, "a denied call in the edge's recent calls", lambda d: [
            li.find_element(By.TAG_NAME, "a") for li in d.find_elements(By.CSS_SELECTOR, "#edge-events li")
            if "denied" in li.text][0])
        link.click()
        rendered(driver, "audit")
        reason = wait(driver, "the event's detail", lambda d: d.find_element(By.CSS_SELECTOR, '#event-detail dd[data-field="Reason"]').text)
        check("denied" in reason and "GET /payments/charge" in reason, f"the audit event gives the reason ({reason})")
        wait(driver, "the chain verified", lambda d: d.find_element(By.ID, "chain").get_attribute("data-verified") is not None)
        chain = driver.find_element(By.ID, "chain")
        check(chain.get_attribute("data-verified") == "true" and "signature valid" in chain.text,
              f"the chain and its last checkpoint verify in the browser ({chain.text})")
        shot(driver, "audit")

        driver.get(URL + "/ui/#secrets")
        rendered(driver, "secrets")
        secret = driver.find_element(By.CSS_SELECTOR, 'tr[data-secret="payments/stripe-key"]')
        check("AWSCURRENT" in secret.text, "the demo secret is listed with its staging label")
        shot(driver, "secrets")

        driver.get(URL + "/ui/#ca")
        rendered(driver, "ca")
        check("signing" in driver.find_element(By.ID, "view").text, "the CA's signing keys are listed")
        shot(driver, "ca")

        # A cross-site form post: the browser sends no cookie (SameSite=Strict), and the
        # server refuses the cookie anyway when the request says it is cross-site.
        evil = http.server.HTTPServer(("127.0.0.1", 0), EvilSite)
        threading.Thread(target=evil.serve_forever, daemon=True).start()
        driver.get(f"http://localhost:{evil.server_port}/")
        wait(driver, "the form post's answer", lambda d: d.current_url.startswith(URL))
        answer = driver.find_element(By.TAG_NAME, "body").text
        check('"unauthenticated"' in answer or '"accessDenied"' in answer, f"the cross-site form post was refused ({answer})")
        evil.shutdown()
        cookie = driver.get_cookie("__Host-writ_session")
        check(cookie is not None and cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict",
              f"the session cookie is HttpOnly, Secure and SameSite=Strict ({cookie})")
        status, body = request("POST", "/v1/revocations", '{"function": "payments"}', headers={
            "Cookie": f"__Host-writ_session={cookie['value']}", "Content-Type": "text/plain",
            "Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})
        check(status == 403 and "Sec-Fetch-Site" in json.dumps(body), f"the session's cookie is refused cross-site ({status} {body})")
        status, body = request("POST", "/v1/revocations", {"function": "payments"}, headers={
            "Cookie": f"__Host-writ_session={cookie['value']}"})
        check(status == 403 and "X-Writ-Console" in json.dumps(body), f"a write without the console's header is refused ({status} {body})")
        status, body = request("GET", "/v1/functions/payments", headers={"Authorization": f"Bearer {token}"})
        check(body.get("revokedAt") is None, "payments is still live")

        # Revoke orders from the console, and see it marked (after a reload too).
        driver.get(URL + "/ui/#functions")
        rendered(driver, "functions")
        revoke = function_rows(driver)["orders"].find_element(By.CSS_SELECTOR, "button.danger")
        revoke.click()
        revoke.click()
        wait(driver, "orders marked revoked", lambda d: function_rows(d)["orders"].get_attribute("data-revoked") == "true")
        driver.refresh()
        rendered(driver, "functions")
        row = function_rows(driver)["orders"]
        check(row.get_attribute("data-revoked") == "true" and "revoked" in row.text, "orders is shown revoked after a reload")
        status, body = request("GET", "/v1/functions/orders", headers={"Authorization": f"Bearer {token}"})
        check(body.get("revokedAt"), "the server has orders revoked")

        # Sign out: the cookie no longer works.
        driver.find_element(By.ID, "sign-out").click()
        rendered(driver, "sign-in")
        status, _ = request("GET", "/v1/functions", headers={"Cookie": f"__Host-writ_session={cookie['value']}"})
        check(status == 401, "a signed-out session gets 401")

        # A token scoped to payments sees only payments.
        status, issued = request("POST", "/v1/tokens", {"description": "console test: payments only", "policies": [{
            "Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "writ:ListFunctions", "Resource": "writ:functions"},
                {"Effect": "Allow", "Action": "writ:GetFunction", "Resource": "spiffe://dev.writ.local/fn/payments"},
                {"Effect": "Allow", "Action": "writ:ReadIntentions", "Resource": "writ:intentions"}]}]},
            headers={"Authorization": f"Bearer {token}"})
        check(status in (200, 201), f"a scoped token was made ({status})")
        sign_in(driver, issued["token"])
        rows = function_rows(driver)
        check(set(rows) == {"payments"}, f"the scoped token sees only payments ({sorted(rows)})")
        wait(driver, "the audit log refused", lambda d: "may not read the audit log" in function_rows(d)["payments"].text)
        check(True, "the scoped token may not read the audit log, and the console says so")
        driver.get(URL + "/ui/#ca")
        rendered(driver, "ca")
        check("may not read the CA" in driver.find_element(By.ID, "view").text, "nor the CA")
    finally:
        driver.quit()
    print("console: all checks passed")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"FAILED: {e}", file=sys.stderr)
        sys.exit(1)
