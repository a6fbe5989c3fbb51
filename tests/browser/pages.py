"""Drives headless Chromium through the demo pages of the running query API over the Chrome
DevTools Protocol: miss -> hit -> database-direct -> delete -> miss, and a hostile row shown
escaped. Saves a screenshot of each step under results/. Exits non-zero on the first failure.

Usage: pages.py DEVTOOLS_PORT BASE_URL RESULTS_DIR
"""
import base64
import json
import sys
import time
import urllib.request

import websocket

DEVTOOLS_PORT, BASE, RESULTS = sys.argv[1], sys.argv[2].rstrip("/"), sys.argv[3]


class Browser:
    def __init__(self, port):
        deadline = time.time() + 30
        while True:
            try:
                targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json", timeout=5))
                page = next(t for t in targets if t["type"] == "page")
                break
            except Exception:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=30)
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def js(self, expression):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    def until_new_page(self, action, what):
        """Runs `action` and waits until a new document has loaded."""
        self.js("window.__old = true")
        action()
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                if self.js("window.__old === undefined && document.readyState === 'complete'"):
                    return
            except Exception:
                pass  # the old context was torn down mid-call
            time.sleep(0.05)
        raise AssertionError(f"{what}: no new page within 30 s")

    def go(self, url):
        self.until_new_page(lambda: self.call("Page.navigate", url=url), url)

    def click(self, selector):
        self.until_new_page(lambda: self.js(f"document.querySelector('{selector}').click()"), selector)

    def text(self, selector):
        return self.js(f"(document.querySelector('{selector}') || {{}}).textContent")

    def shot(self, name):
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path = f"{RESULTS}/pages-{name}.png"
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        print(f"  screenshot {path}")


def expect(label, actual, wanted):
    print(f"  {label}: {actual}")
    if actual != wanted:
        page = browser.js("location.href + ' :: ' + document.body.innerText.slice(0, 600)")
        raise AssertionError(f"{label}: expected {wanted!r}, got {actual!r}; the page: {page}")


browser = Browser(DEVTOOLS_PORT)
browser.call("Page.enable")
browser.call("Emulation.setDeviceMetricsOverride", width=1200, height=800, deviceScaleFactor=1, mobile=False)

print("index")
browser.go(f"{BASE}/")
expect("first link", browser.js("document.querySelector('a').textContent.length > 0"), True)
browser.shot("0-index")

print("product 3: miss, then hit")
browser.go(f"{BASE}/queries/product?id=3")
expect("cache", browser.text("#cache"), "miss")
browser.shot("1-miss")
browser.click("#run")
expect("cache", browser.text("#cache"), "hit")
expect("ttl shown", (browser.text("#ttl") or "").endswith(" s"), True)
browser.shot("2-hit")

print("query the database directly")
browser.click("#direct")
expect("cache", browser.text("#cache"), "bypass")
browser.shot("3-database-direct")

print("delete the cached entry")
browser.go(f"{BASE}/queries/product?id=3")
expect("cache", browser.text("#cache"), "hit")
browser.click("#delete")
expect("cache", browser.text("#cache"), "miss")
browser.shot("4-after-delete")

print("a hostile row is shown as text")
browser.go(f"{BASE}/queries/product?id=5")
expect("injected elements", browser.js("document.querySelectorAll('#rows img, #rows script').length"), 0)
expect("row text", "<img src=x onerror=" in (browser.text("#rows") or ""), True)
expect("alert ran", browser.js("window.__pwned === true"), False)
browser.shot("5-escaped")
print("browser test passed")
