"""Drive headless Chromium over the DevTools protocol, and serve the app for it.

Used by ``tests/test_ui_browser.py`` and ``bench/screenshot.py``. Debian's ``chromium`` package
is enough (no Playwright download); the protocol is spoken with ``websockets``' sync client.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette

__all__ = ["Browser", "find_chromium", "free_port", "launch_chromium", "seed_demo", "serve"]

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
    "--disable-default-apps", "--hide-scrollbars", "--window-size=1280,900",
)


def find_chromium() -> str | None:
    """``$ENGINY_CHROMIUM``, else ``chromium`` / ``chromium-browser`` on the PATH."""
    explicit = os.environ.get("ENGINY_CHROMIUM")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve(app: Starlette, port: int) -> Iterator[str]:
    """Run ``app`` with uvicorn in a thread; yield its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False,
                            lifespan="on", ws="none")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextlib.contextmanager
def launch_chromium(binary: str) -> Iterator[str]:
    """Start headless Chromium with remote debugging; yield a page's DevTools websocket URL."""
    profile = tempfile.mkdtemp(prefix="enginy-chromium-")
    proc = subprocess.Popen(
        [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
         "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    drain: threading.Thread | None = None
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 30
        browser_ws = None
        lines: list[str] = []
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                if proc.poll() is not None:
                    break
                continue
            lines.append(line)
            match = re.search(r"DevTools listening on (ws://\S+)", line)
            if match:
                browser_ws = match.group(1)
                break
        if browser_ws is None:
            raise RuntimeError("Chromium did not start:\n" + "".join(lines[-20:]))
        # Keep draining stderr so Chromium never blocks on a full pipe.
        stderr = proc.stderr
        drain = threading.Thread(target=lambda: [None for _ in stderr], daemon=True)
        drain.start()
        http_base = browser_ws.split("/devtools/")[0].replace("ws://", "http://")
        page_ws = None
        while time.monotonic() < deadline and page_ws is None:
            targets = httpx.get(f"{http_base}/json/list", timeout=5).json()
            page_ws = next((t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page"),
                           None)
            if page_ws is None:
                time.sleep(0.1)
        if page_ws is None:
            raise RuntimeError("Chromium has no page target")
        yield page_ws
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if drain is not None:
            drain.join(timeout=5)
        if proc.stderr is not None:
            proc.stderr.close()
        shutil.rmtree(profile, ignore_errors=True)


class Browser:
    """A minimal blocking DevTools client for one page."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self._id = 0
        self._events: list[dict[str, Any]] = []
        self.credentials: tuple[str, str] | None = None
        self.auth_challenges = 0

    @classmethod
    @contextlib.contextmanager
    def connect(cls, ws_url: str) -> Iterator[Browser]:
        from websockets.sync.client import connect

        with connect(ws_url, max_size=64 * 1024 * 1024, open_timeout=15) as ws:
            yield cls(ws)

    def _handle(self, message: dict[str, Any]) -> bool:
        """Answer the Fetch domain's pauses; True when the message was consumed."""
        method = message.get("method")
        params = message.get("params", {})
        if method == "Fetch.requestPaused":
            self._send("Fetch.continueRequest", {"requestId": params["requestId"]})
            return True
        if method == "Fetch.authRequired":
            self.auth_challenges += 1
            if self.credentials is None:
                answer = {"response": "CancelAuth"}
            else:
                user, password = self.credentials
                answer = {"response": "ProvideCredentials", "username": user,
                          "password": password}
            self._send("Fetch.continueWithAuth", {"requestId": params["requestId"],
                                                  "authChallengeResponse": answer})
            return True
        return False

    def _send(self, method: str, params: dict[str, Any] | None = None) -> int:
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params or {}}))
        return self._id

    def _recv(self, timeout: float) -> dict[str, Any]:
        message: dict[str, Any] = json.loads(self.ws.recv(timeout=timeout))
        return message

    def call(self, method: str, params: dict[str, Any] | None = None,
             timeout: float = 30) -> dict[str, Any]:
        wanted = self._send(method, params)
        deadline = time.monotonic() + timeout
        while True:
            message = self._recv(max(deadline - time.monotonic(), 0.01))
            if message.get("id") == wanted:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            if "method" in message and not self._handle(message):
                self._events.append(message)

    def wait_for(self, event: str, timeout: float = 30) -> dict[str, Any]:
        for i, message in enumerate(self._events):
            if message.get("method") == event:
                del self._events[: i + 1]
                return message
        self._events.clear()
        deadline = time.monotonic() + timeout
        while True:
            message = self._recv(max(deadline - time.monotonic(), 0.01))
            if message.get("method") == event:
                return message
            if "method" in message:
                self._handle(message)

    def start(self, credentials: tuple[str, str] | None) -> None:
        """Enable what the tests need; ``credentials`` answer HTTP Basic challenges."""
        self.credentials = credentials
        self.call("Page.enable")
        self.call("Fetch.enable", {"handleAuthRequests": True,
                                   "patterns": [{"urlPattern": "*"}]})
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False})

    def goto(self, url: str) -> None:
        self.call("Page.navigate", {"url": url})
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        # DevTools evaluation is not subject to the page's CSP (which forbids page scripts).
        result = self.call("Runtime.evaluate", {"expression": expression,
                                                "returnByValue": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"evaluate failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def click(self, selector: str) -> None:
        """Click a link and wait for the page it opens."""
        self.evaluate(f"document.querySelector({json.dumps(selector)}).click()")
        self.wait_for("Page.loadEventFired")

    def screenshot(self, path: str, full_page: bool = True) -> None:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            metrics = self.call("Page.getLayoutMetrics")
            size = metrics["cssContentSize"]
            height = min(int(size["height"]), 2400)
            params["clip"] = {"x": 0, "y": 0, "width": 1280, "height": height, "scale": 1}
            params["captureBeyondViewport"] = True
        data = self.call("Page.captureScreenshot", params)["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))


def seed_demo(base_url: str, key: str) -> dict[str, str]:
    """Write a small, realistic-looking data set through the API (like Enginy would)."""
    h = {"X-API-Key": key}
    with httpx.Client(base_url=base_url, headers=h, timeout=10) as c:
        companies = c.post("/companies", json={"companies": [
            {"externalId": "eg-co-1", "name": "Northwind Analytics", "domain": "northwind.example",
             "industry": "Software", "numberOfEmployees": 240, "city": "Barcelona"},
            {"externalId": "eg-co-2", "name": "Blue Harbor Logistics",
             "domain": "blueharbor.example", "industry": "Logistics"},
        ]}).json()["results"]
        contacts = c.post("/contacts", json={"contacts": [
            {"externalId": "eg-ct-1", "firstName": "Marta", "lastName": "Soler",
             "email": "marta.soler@northwind.example", "jobTitle": "VP Sales",
             "linkedinUrl": "https://www.linkedin.com/in/marta-soler-example",
             "campaignEngagementStatus": "REPLIED", "note": "<script>alert(1)</script>"},
            {"externalId": "eg-ct-2", "firstName": "Tom", "lastName": "Becker",
             "email": "tom.becker@blueharbor.example", "jobTitle": "Head of Ops"},
        ]}).json()["results"]
        co = {r["externalId"]: r["crmId"] for r in companies}
        ct = {r["externalId"]: r["crmId"] for r in contacts}
        c.post("/associations", json={"associations": [
            {"contactCRMId": ct["eg-ct-1"], "companyCRMId": co["eg-co-1"]},
            {"contactCRMId": ct["eg-ct-2"], "companyCRMId": co["eg-co-2"]},
        ]}).raise_for_status()
        marta = ct["eg-ct-1"]
        for when, kind, direction, subject, body in [
            ("2026-11-02T09:12:00Z", "LINKEDIN_CONNECTION", "OUTBOUND", None,
             "Hi Marta, I'd love to connect."),
            ("2026-11-03T16:40:00Z", "LINKEDIN", "INBOUND", None, "Thanks! Happy to connect."),
            ("2026-11-05T08:30:00Z", "EMAIL", "OUTBOUND", "Forecast accuracy at Northwind",
             "Hi Marta,\nTeams like yours cut forecast error by a third with..."),
            ("2026-11-07T11:05:00Z", "EMAIL", "INBOUND", "Re: Forecast accuracy at Northwind",
             "Sounds interesting. Can we talk next Tuesday?"),
        ]:
            c.post("/activities", json={
                "type": kind, "direction": direction, "subject": subject, "body": body,
                "occurredAt": when, "contactId": marta,
                "metadata": {"messageId": f"msg-{when}"}}).raise_for_status()
        task = c.post("/tasks", json={
            "subject": "Call Marta about the pilot", "type": "CALL", "contactId": marta,
            "dueDate": "2026-11-11T10:00:00Z"}).json()
        c.post("/tasks", json={"subject": "Send case study", "contactId": marta,
                               "dueDate": "2026-11-08T10:00:00Z"})
        c.patch(f"/tasks/{task['id']}", json={"description": "Pilot scope: 2 regions"})
        c.post("/contacts/sync", json={"contacts": [{"externalId": "eg-ct-9",
                                                     "email": "nobody@else.example"}]})
        c.post("/contacts", content=b"{oops", headers={"content-type": "application/json"})
        c.get("/health")
    return {"contact": marta, "company": co["eg-co-1"], "task": task["id"]}
