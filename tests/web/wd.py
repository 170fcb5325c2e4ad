"""A small WebDriver client (W3C protocol over HTTP), standard library only.

Starts Debian's chromedriver on a free loopback port, opens one headless
chromium session and offers the few commands the dashboard tests use:
go, js (execute a script), wait_js (poll a script until it returns a truthy
value, with a hang guard) and screenshot.
"""
import base64
import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class WebDriverError(Exception):
    pass


class Browser:
    def __init__(self, driver="chromedriver", binary=None, size=(1280, 1000), log=None):
        self.port = _free_port()
        self.profile = tempfile.mkdtemp(prefix="medthink-chromium-")
        self.proc = subprocess.Popen(
            [driver, "--port=%d" % self.port, "--allowed-ips=127.0.0.1"],
            stdout=log or subprocess.DEVNULL, stderr=subprocess.STDOUT)
        self.base = "http://127.0.0.1:%d" % self.port
        deadline = time.time() + 30
        while True:
            try:
                if self._call("GET", "/status").get("ready"):
                    break
            except (OSError, WebDriverError):
                pass
            if time.time() > deadline or self.proc.poll() is not None:
                self.proc.kill()
                raise WebDriverError("chromedriver did not start")
            time.sleep(0.1)
        args = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--disable-extensions", "--disable-background-networking",
                "--user-data-dir=" + self.profile, "--window-size=%d,%d" % size]
        opts = {"args": args}
        if binary:
            opts["binary"] = binary
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome",
                                                 "goog:chromeOptions": opts}}}
        try:
            r = self._call("POST", "/session", caps)
        except Exception:
            self.proc.kill()
            raise
        self.sid = r["sessionId"]

    def _call(self, method, path, body=None, timeout=60):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                out = json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            try:
                msg = json.loads(e.read()).get("value", {})
            except ValueError:
                msg = {}
            raise WebDriverError("%s %s: %s %s" % (method, path, msg.get("error", e.code),
                                                   msg.get("message", "")[:400]))
        return out.get("value", out)

    def _s(self, method, path, body=None):
        return self._call(method, "/session/%s%s" % (self.sid, path), body)

    def go(self, url):
        self._s("POST", "/url", {"url": url})

    def js(self, script, *args):
        return self._s("POST", "/execute/sync", {"script": script, "args": list(args)})

    def wait_js(self, script, *args, timeout=60):
        """Polls script until it returns something truthy; returns it. The
        timeout is a hang guard only: the condition is what is waited for."""
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            try:
                last = self.js(script, *args)
            except WebDriverError as e:
                last = str(e)
            else:
                if last:
                    return last
            time.sleep(0.1)
        raise WebDriverError("timed out waiting for: %s (last: %r)" % (script[:200], last))

    def screenshot(self, path):
        png = base64.b64decode(self._s("GET", "/screenshot"))
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "wb") as f:
            f.write(png)
        return path

    def close(self):
        try:
            self._s("DELETE", "")
        except Exception:
            pass
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        subprocess.call(["rm", "-rf", self.profile])
