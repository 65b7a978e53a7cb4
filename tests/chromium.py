"""Open a page in headless Chromium and report what a person would see (test helper).

Talks the DevTools protocol over ``--remote-debugging-pipe`` (file descriptors 3 and 4,
NUL-separated JSON messages: no websocket, no port, no extra package). :func:`open_page` loads a
``file://`` page, waits for its ``load`` event, then returns the screenshot, every console
message, uncaught exception and failed resource load, and each ``<img>``'s load state.

Finding the browser: ``$CHROMIUM``, then ``chromium``, ``chromium-browser``, ``google-chrome``
on ``PATH`` (Debian's package is ``chromium``).
"""

from __future__ import annotations

import base64
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

#: Evaluated in the page after ``load``: each image's source kind, whether it finished and
#: decoded to a non-empty bitmap.
_IMAGES_JS = """
(() => Array.from(document.images).map(im => ({
  src: (im.currentSrc || im.src || '').slice(0, 40),
  complete: im.complete,
  width: im.naturalWidth,
  height: im.naturalHeight,
})))()
"""


def find_chromium() -> str | None:
    """Path of a Chromium binary, or None."""
    env = os.environ.get("CHROMIUM")
    if env and shutil.which(env):
        return shutil.which(env)
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageReport:
    """What the browser saw.

    Attributes
    ----------
    screenshot : bytes
        PNG of the whole page (the viewport grown to the page's height, up to a limit).
    images : list of dict
        ``src`` (first 40 characters), ``complete``, ``width``, ``height`` per ``<img>``.
    console : list of str
        ``level: text`` of console messages, exceptions and log entries (failed loads, CSP
        violations, ...).
    errors : list of str
        The subset of :attr:`console` at level error (or uncaught exceptions).
    """

    screenshot: bytes
    images: list[dict] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def rgb(self):
        """The screenshot as an RGB ``uint8`` array ``(height, width, 3)``."""
        import io

        import numpy as np
        from PIL import Image

        return np.asarray(Image.open(io.BytesIO(self.screenshot)).convert("RGB"))

    @property
    def broken_images(self) -> list[dict]:
        """Images that did not load (not complete, or zero natural size)."""
        return [i for i in self.images if not i["complete"] or i["width"] <= 0]


class _Pipe:
    def __init__(self, proc: subprocess.Popen, write_fd: int, read_fd: int) -> None:
        self.proc, self.wfd, self.rfd = proc, write_fd, read_fd
        self.next_id = 0
        self.replies: dict[int, dict] = {}
        self.events: queue.Queue = queue.Queue()
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self.rfd, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                with self.cond:
                    self.replies[-1] = {"closed": True}
                    self.cond.notify_all()
                self.events.put(None)
                return
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                if "id" in msg:
                    with self.cond:
                        self.replies[msg["id"]] = msg
                        self.cond.notify_all()
                else:
                    self.events.put(msg)

    def tail(self) -> str:
        """The end of the browser's stderr (for error messages)."""
        log = getattr(self, "log_path", None)
        try:
            return Path(log).read_text(errors="replace")[-2000:] if log else ""
        except OSError:
            return ""

    def call(
        self,
        method: str,
        params: dict | None = None,
        session: str | None = None,
        timeout: float = 60.0,
    ) -> dict:
        self.next_id += 1
        mid = self.next_id
        msg = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        try:
            os.write(self.wfd, json.dumps(msg).encode() + b"\0")
        except BrokenPipeError:
            raise RuntimeError(f"chromium is gone ({method}): {self.tail()}") from None
        deadline = time.monotonic() + timeout
        with self.cond:
            while mid not in self.replies:
                if -1 in self.replies:
                    raise RuntimeError(f"chromium closed the pipe during {method}: {self.tail()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"chromium did not answer {method} within {timeout} s")
                self.cond.wait(left)
            reply = self.replies.pop(mid)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})


def open_page(
    page: str | os.PathLike[str],
    *,
    width: int = 1280,
    height: int = 900,
    max_height: int = 4000,
    timeout: float = 90.0,
    chromium: str | None = None,
) -> PageReport:
    """Load a local page in headless Chromium and report what it showed.

    Parameters
    ----------
    page : path-like
        An HTML file (opened as ``file://``).
    width, height : int
        Viewport size; the screenshot covers the page's full height up to ``max_height``.
    max_height : int
    timeout : float
        Seconds to wait for the page's ``load`` event.
    chromium : str, optional
        The binary (default: :func:`find_chromium`).

    Returns
    -------
    PageReport
    """
    binary = chromium or find_chromium()
    if binary is None:
        raise FileNotFoundError("no chromium binary found")
    url = Path(page).resolve().as_uri()
    to_browser_r, to_browser_w = os.pipe()
    from_browser_r, from_browser_w = os.pipe()
    profile = tempfile.mkdtemp(prefix="hamfeat-chromium-")

    def child_fds() -> None:  # the browser reads commands on fd 3 and writes on fd 4
        import fcntl

        r = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)  # out of the way of 3 and 4 first
        w = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
        os.dup2(r, 3)
        os.dup2(w, 4)

    args = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--no-default-browser-check",
        "--hide-scrollbars",
        "--remote-debugging-pipe",
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
        "about:blank",
    ]
    log = open(os.path.join(profile, "stderr.log"), "wb")  # closed below
    proc = subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=log,
        close_fds=False,
        preexec_fn=child_fds,  # dup2 only, before exec
    )
    os.close(to_browser_r)
    os.close(from_browser_w)
    pipe = _Pipe(proc, to_browser_w, from_browser_r)
    pipe.log_path = os.path.join(profile, "stderr.log")
    try:
        target = pipe.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = pipe.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for method in ("Page.enable", "Runtime.enable", "Log.enable"):
            pipe.call(method, session=session)
        pipe.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        pipe.call("Page.navigate", {"url": url}, session=session)
        console: list[str] = []
        errors: list[str] = []
        loaded = False
        deadline = time.monotonic() + timeout

        def drain(block_until_load: bool) -> None:
            nonlocal loaded
            while True:
                left = deadline - time.monotonic()
                if block_until_load and not loaded and left <= 0:
                    raise TimeoutError(f"{url}: no load event within {timeout} s")
                try:
                    ev = pipe.events.get(
                        timeout=max(0.05, left) if block_until_load and not loaded else 0.2
                    )
                except queue.Empty:
                    if loaded or not block_until_load:
                        return
                    continue
                if ev is None:
                    raise RuntimeError("chromium exited")
                m, p = ev.get("method"), ev.get("params", {})
                if m == "Page.loadEventFired":
                    loaded = True
                elif m == "Runtime.consoleAPICalled":
                    text = " ".join(
                        str(a.get("value", a.get("description", ""))) for a in p.get("args", [])
                    )
                    console.append(f"{p.get('type')}: {text}")
                    if p.get("type") in ("error", "assert"):
                        errors.append(console[-1])
                elif m == "Runtime.exceptionThrown":
                    d = p.get("exceptionDetails", {})
                    msg = d.get("exception", {}).get("description") or d.get("text", "")
                    console.append(f"exception: {msg}")
                    errors.append(console[-1])
                elif m == "Log.entryAdded":
                    e = p.get("entry", {})
                    console.append(f"{e.get('level')}: {e.get('text')} {e.get('url', '')}")
                    if e.get("level") == "error":
                        errors.append(console[-1])

        drain(True)
        # let late messages (e.g. image decode errors) arrive, then look at the images
        drain(False)
        res = pipe.call(
            "Runtime.evaluate",
            {"expression": _IMAGES_JS, "returnByValue": True},
            session=session,
        )
        images = res.get("result", {}).get("value", [])
        metrics = pipe.call("Page.getLayoutMetrics", session=session)
        size = metrics.get("cssContentSize") or metrics.get("contentSize") or {}
        full_h = int(min(max_height, max(height, size.get("height", height))))
        pipe.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": full_h, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        shot = pipe.call("Page.captureScreenshot", {"format": "png"}, session=session)
        drain(False)
        return PageReport(base64.b64decode(shot["data"]), images, console, errors)
    finally:
        try:
            pipe.call("Browser.close", timeout=10)
        except Exception:  # the browser may already be gone
            pass
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
        os.close(to_browser_w)
        os.close(from_browser_r)
        log.close()
        shutil.rmtree(profile, ignore_errors=True)
