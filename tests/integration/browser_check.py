#!/usr/bin/python3
"""Headless-browser check of the salvod operator dashboard.

Loads the dashboard served by salvod in chromium-headless-shell, lets the
page's JavaScript fetch api/v1/status and render, dumps the resulting DOM and
compares every headline number (elements carrying data-metric/data-value)
with the JSON written by `salvoctl status --json`. Then takes a screenshot.
The bearer token goes to the page as the URL fragment #token=... (--token), the
way the page takes it from a link; --expect-login instead checks that the page
asks for a token (the form shown, no data rendered) and takes the screenshot.

Usage:
  browser_check.py --url http://127.0.0.1:PORT/ --status-json FILE \
      --screenshot OUT.png [--token TOKEN] [--chromium /usr/bin/chromium-headless-shell] \
      [--timeout 60] [--expect-domain NAME ...] [--metric PATH ...]
  browser_check.py --url http://127.0.0.1:PORT/ --expect-login [--token WRONG] \
      --screenshot OUT.png

Exit status: 0 all checks passed; 1 a check failed (the reason is printed);
2 usage or infrastructure error (chromium missing, timed out or crashed,
unreadable status file).

Standard library only.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from html.parser import HTMLParser

REQUIRED_METRICS = [
    "queue.messages", "queue.recipients", "queue.ready", "queue.deferred",
    "queue.in_flight", "in.recipients", "out.delivered", "out.deferrals",
    "out.bounced", "out.expired", "out.dsns", "connections.in",
    "connections.out", "shards",
]

DEFAULT_CHROMIUM = "/usr/bin/chromium-headless-shell"
FALLBACK_BROWSERS = ["chromium-headless-shell", "chromium", "chromium-browser",
                     "google-chrome", "google-chrome-stable"]

# Flags common to every chromium run. --virtual-time-budget makes the
# renderer fast-forward timers but *waits for outstanding network requests*,
# so the page's fetch() of api/v1/status completes (and the page renders)
# before --dump-dom / --screenshot fire. Without it the DOM is dumped right
# after the load event, before the first fetch resolves.
BASE_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--no-first-run", "--no-default-browser-check", "--disable-extensions",
    "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--mute-audio", "--hide-scrollbars",
]


class InfraError(Exception):
    """Problem with the test environment rather than the product (exit 2)."""


class PageLoadError(Exception):
    """Chromium could not load the URL at all, e.g. nothing listening (exit 1)."""


# stderr lines chromium prints in a container regardless of the page.
NOISE = ("dbus", "bluez", "Floss", "vaapi", "sandbox_linux", "gpu_init",
         "viz_main", "gl_surface", "angle", "fontconfig")


def useful_stderr(err, limit=8):
    lines = [l for l in err.decode("utf-8", "replace").splitlines()
             if l.strip() and not any(n in l for n in NOISE)]
    return lines[-limit:]


def log(msg):
    print(msg, flush=True)


# ---------------------------------------------------------------------------
# chromium
# ---------------------------------------------------------------------------

def find_chromium(requested):
    if requested:
        if os.path.isfile(requested) and os.access(requested, os.X_OK):
            return requested
        found = shutil.which(requested)
        if found:
            return found
        if requested != DEFAULT_CHROMIUM:
            raise InfraError("chromium binary not found: %s" % requested)
    for name in FALLBACK_BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    raise InfraError("chromium not found (tried %s and %s on PATH)"
                     % (requested or DEFAULT_CHROMIUM, ", ".join(FALLBACK_BROWSERS)))


def run_chromium(chromium, args, timeout, what):
    """Run chromium with a hard timeout; kill the whole process group on expiry.

    Returns (returncode, stdout_text). stderr (lots of dbus/GPU noise) is
    captured and only shown when chromium fails.
    """
    profile = tempfile.mkdtemp(prefix="salvo-browser-check-")
    cmd = [chromium] + BASE_FLAGS + ["--user-data-dir=" + profile] + args
    try:
        try:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        except OSError as e:
            raise InfraError("cannot start %s: %s" % (chromium, e))
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
            proc.communicate()
            raise InfraError("chromium timed out after %ss (%s)" % (timeout, what))
        finally:
            # Reap any helper processes chromium left in its group.
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
        if proc.returncode != 0:
            tail = useful_stderr(err)
            for line in tail:
                if "Page load failed" in line:
                    raise PageLoadError("chromium could not load %s (%s): %s"
                                        % (args[-1], what, line.split("] ", 1)[-1]))
            raise InfraError("chromium exited with status %d (%s); stderr tail:\n  %s"
                             % (proc.returncode, what, "\n  ".join(tail)))
        return out.decode("utf-8", "replace")
    finally:
        shutil.rmtree(profile, ignore_errors=True)


# ---------------------------------------------------------------------------
# DOM parsing
# ---------------------------------------------------------------------------

class DashboardParser(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.body_attrs = None
        self.metrics = {}          # path -> list of data-value (None if absent)
        self.domains = []          # data-domain values of <tr>
        self.bounce_rows = 0
        self.error_banner_shown = False
        self._in_banner = 0
        self.banner_text = []
        self.chrome_error = False
        self.login_form = False
        self._in_login_msg = 0
        self.login_msg = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body" and self.body_attrs is None:
            self.body_attrs = a
        if a.get("id") == "login-form":
            self.login_form = True
        if a.get("id") == "login-msg":
            self._in_login_msg = 1
        elif self._in_login_msg:
            self._in_login_msg += 1
        if "data-metric" in a:
            self.metrics.setdefault(a["data-metric"], []).append(a.get("data-value"))
        if tag == "tr":
            if "data-domain" in a:
                self.domains.append(a["data-domain"] or "")
            if "data-bounce" in a:
                self.bounce_rows += 1
        if a.get("id") == "error-banner":
            classes = (a.get("class") or "").split()
            if "show" in classes:
                self.error_banner_shown = True
                self._in_banner = 1
        elif self._in_banner:
            self._in_banner += 1
        if a.get("id") in ("main-frame-error", "sub-frame-error"):
            self.chrome_error = True

    def handle_endtag(self, tag):
        if self._in_banner:
            self._in_banner -= 1
        if self._in_login_msg:
            self._in_login_msg -= 1

    def handle_data(self, data):
        if self._in_banner:
            self.banner_text.append(data)
        if self._in_login_msg:
            self.login_msg.append(data)


def parse_dom(html):
    p = DashboardParser()
    p.feed(html)
    p.close()
    return p


# ---------------------------------------------------------------------------
# comparison
# ---------------------------------------------------------------------------

_MISSING = object()


def json_path(obj, path):
    for part in path.split("."):
        if isinstance(obj, dict) and part in obj:
            obj = obj[part]
        elif isinstance(obj, list) and part.isdigit() and int(part) < len(obj):
            obj = obj[int(part)]
        else:
            return _MISSING
    return obj


def values_equal(page_text, expected):
    """Compare a data-value string with a JSON value. Integers must match exactly."""
    if page_text is None:
        return False
    if isinstance(expected, bool) or expected is None:
        return False
    if isinstance(expected, int):
        try:
            return int(page_text) == expected
        except ValueError:
            try:
                f = float(page_text)
            except ValueError:
                return False
            return f.is_integer() and int(f) == expected
    if isinstance(expected, float):
        try:
            f = float(page_text)
        except ValueError:
            return False
        return abs(f - expected) <= 1e-9 * max(1.0, abs(expected))
    return False


def fmt(v):
    if v is _MISSING:
        return "<absent>"
    if v is None:
        return "<no data-value>"
    return str(v)


def load_status(path):
    try:
        with open(path, "r", encoding="utf-8") as f:
            data = json.load(f)
    except OSError as e:
        raise InfraError("cannot read --status-json %s: %s" % (path, e))
    except ValueError as e:
        raise InfraError("--status-json %s is not valid JSON: %s" % (path, e))
    if not isinstance(data, dict):
        raise InfraError("--status-json %s: top level is not an object" % path)
    # Accept the full /api/v1/status reply too: {"ok":..., "status": {...}}.
    if "queue" not in data and isinstance(data.get("status"), dict):
        data = data["status"]
    return data


def png_info(path):
    with open(path, "rb") as f:
        head = f.read(32)
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    if head[12:16] != b"IHDR":
        return None
    w = int.from_bytes(head[16:20], "big")
    h = int.from_bytes(head[20:24], "big")
    return w, h


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------

def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True, help="dashboard URL, e.g. http://127.0.0.1:PORT/")
    ap.add_argument("--status-json", help="output of `salvoctl status --json` (not with --expect-login)")
    ap.add_argument("--token", default="", help="bearer token, given to the page as #token=...")
    ap.add_argument("--expect-login", action="store_true",
                    help="check that the page asks for a token instead of showing data")
    ap.add_argument("--screenshot", required=True, help="where to write the PNG screenshot")
    ap.add_argument("--chromium", default=DEFAULT_CHROMIUM, help="browser binary (default %(default)s)")
    ap.add_argument("--timeout", type=float, default=60, help="hard timeout per chromium run, seconds")
    ap.add_argument("--expect-domain", action="append", default=[], metavar="NAME",
                    help="require a destination row <tr data-domain=NAME> (repeatable)")
    ap.add_argument("--metric", action="append", default=[], metavar="PATH",
                    help="also compare this data-metric path (repeatable)")
    ap.add_argument("--virtual-time-budget", type=int, default=5000, metavar="MS",
                    help="chromium virtual time budget (default %(default)s)")
    ap.add_argument("--window-size", default="1280,1000", help="screenshot size (default %(default)s)")
    a = ap.parse_args(argv)

    if a.timeout <= 0:
        ap.error("--timeout must be positive")
    if not a.expect_login and not a.status_json:
        ap.error("--status-json is required (unless --expect-login)")
    url = a.url
    if a.token:
        url = a.url.split("#", 1)[0] + "#token=" + urllib.parse.quote(a.token, safe="")

    if a.expect_login:
        return check_login(a, url)

    try:
        status = load_status(a.status_json)
        chromium = find_chromium(a.chromium)
        log("browser_check: chromium=%s url=%s token=%s" % (chromium, a.url, "yes" if a.token else "no"))

        # a) render and dump the DOM. Retry once if the page did not become
        # ready (e.g. salvod still starting); a real rendering bug fails twice.
        budget = "--virtual-time-budget=%d" % a.virtual_time_budget
        dom = None
        for attempt in (1, 2):
            t0 = time.monotonic()
            html = run_chromium(chromium, ["--dump-dom", budget, url], a.timeout, "dump-dom")
            dom = parse_dom(html)
            ready = (dom.body_attrs or {}).get("data-ready") == "1"
            log("dump-dom attempt %d: %d bytes in %.1fs, body data-ready=%s"
                % (attempt, len(html), time.monotonic() - t0,
                   (dom.body_attrs or {}).get("data-ready", "<absent>")))
            if ready:
                break
            if attempt == 1:
                time.sleep(1)
    except InfraError as e:
        log("ERROR: %s" % e)
        return 2
    except PageLoadError as e:
        log("FAIL: %s" % e)
        return 1

    failures = []

    if (dom.body_attrs or {}).get("data-ready") != "1":
        why = "page never became ready (<body data-ready=\"1\"> missing after first fetch)"
        if dom.chrome_error:
            why += "; chromium showed its network error page (is salvod serving %s?)" % a.url
        if dom.error_banner_shown:
            why += "; error banner: %s" % " ".join("".join(dom.banner_text).split())
        log("FAIL: %s" % why)
        return 1

    if dom.error_banner_shown:
        # Not fatal on its own (a later poll may have failed after the render
        # we compare), but worth showing.
        log("note: error banner visible: %s" % " ".join("".join(dom.banner_text).split()))

    # b) compare metrics
    wanted = list(REQUIRED_METRICS)
    for m in a.metric:
        if m not in wanted:
            wanted.append(m)
    for path in wanted:
        expected = json_path(status, path)
        page_vals = dom.metrics.get(path)
        if expected is _MISSING:
            log("%s: page=%s salvoctl=<absent> MISMATCH" % (path, fmt(page_vals[0]) if page_vals else "<absent>"))
            failures.append("%s missing from --status-json" % path)
            continue
        if not page_vals:
            log("%s: page=<absent> salvoctl=%s MISMATCH" % (path, fmt(expected)))
            failures.append("%s: no [data-metric] element on the page" % path)
            continue
        bad = [v for v in page_vals if not values_equal(v, expected)]
        shown = page_vals[0] if not bad else bad[0]
        if bad:
            extra = "" if len(page_vals) == 1 else " (%d of %d elements differ)" % (len(bad), len(page_vals))
            log("%s: page=%s salvoctl=%s MISMATCH%s" % (path, fmt(shown), fmt(expected), extra))
            failures.append("%s: page=%s salvoctl=%s" % (path, fmt(shown), fmt(expected)))
        else:
            log("%s: page=%s salvoctl=%s ok" % (path, fmt(shown), fmt(expected)))

    others = sorted(set(dom.metrics) - set(wanted))
    for path in others:
        log("%s: page=%s salvoctl=%s (info, not compared)"
            % (path, fmt(dom.metrics[path][0]), fmt(json_path(status, path))))

    # destination / bounce rows
    log("destination rows: %d %s" % (len(dom.domains), dom.domains[:10]))
    if not dom.domains:
        failures.append("no destination rows (<tr data-domain>) rendered")
    for d in a.expect_domain:
        if d in dom.domains:
            log("expect-domain %s: ok" % d)
        else:
            log("expect-domain %s: MISSING" % d)
            failures.append("destination row for %s not rendered" % d)
    bounced = json_path(status, "out.bounced")
    log("bounce rows: %d (salvoctl out.bounced=%s)" % (dom.bounce_rows, fmt(bounced)))
    if isinstance(bounced, (int, float)) and not isinstance(bounced, bool) and bounced > 0 \
            and dom.bounce_rows == 0:
        failures.append("out.bounced=%s but no bounce rows (<tr data-bounce>) rendered" % bounced)

    # c) screenshot
    shot = os.path.abspath(a.screenshot)
    try:
        os.makedirs(os.path.dirname(shot), exist_ok=True)
        if os.path.exists(shot):
            os.unlink(shot)
        t0 = time.monotonic()
        run_chromium(chromium, ["--screenshot=" + shot, "--window-size=" + a.window_size,
                                budget, url], a.timeout, "screenshot")
    except InfraError as e:
        log("ERROR: %s" % e)
        return 2
    except PageLoadError as e:
        log("FAIL: %s" % e)
        return 1
    except OSError as e:
        log("ERROR: cannot prepare screenshot path %s: %s" % (shot, e))
        return 2
    if not os.path.exists(shot):
        failures.append("screenshot %s was not written" % shot)
    else:
        size = os.path.getsize(shot)
        dims = png_info(shot)
        log("screenshot: %s %d bytes %s in %.1fs" % (shot, size,
            "%dx%d" % dims if dims else "(not a PNG)", time.monotonic() - t0))
        if dims is None:
            failures.append("screenshot %s does not have a PNG signature/IHDR" % shot)
        if size <= 10 * 1024:
            failures.append("screenshot %s is only %d bytes (expected > 10 KB)" % (shot, size))

    if failures:
        log("FAIL: %d problem(s):" % len(failures))
        for f in failures:
            log("  - %s" % f)
        return 1
    log("PASS: %d metrics match, %d destination rows, %d bounce rows, screenshot ok"
        % (len(wanted), len(dom.domains), dom.bounce_rows))
    return 0


def check_login(a, url):
    """The page without a (valid) token: the form is shown, nothing is rendered."""
    budget = "--virtual-time-budget=%d" % a.virtual_time_budget
    try:
        chromium = find_chromium(a.chromium)
        log("browser_check: chromium=%s url=%s expect-login token=%s"
            % (chromium, a.url, "yes" if a.token else "no"))
        html = run_chromium(chromium, ["--dump-dom", budget, url], a.timeout, "dump-dom")
        dom = parse_dom(html)
        shot = os.path.abspath(a.screenshot)
        os.makedirs(os.path.dirname(shot), exist_ok=True)
        if os.path.exists(shot):
            os.unlink(shot)
        run_chromium(chromium, ["--screenshot=" + shot, "--window-size=" + a.window_size,
                                budget, url], a.timeout, "screenshot")
    except InfraError as e:
        log("ERROR: %s" % e)
        return 2
    except PageLoadError as e:
        log("FAIL: %s" % e)
        return 1
    body = dom.body_attrs or {}
    msg = " ".join("".join(dom.login_msg).split())
    log("body data-auth=%s data-ready=%s login form=%s message=%r"
        % (body.get("data-auth", "<absent>"), body.get("data-ready", "<absent>"),
           dom.login_form, msg))
    failures = []
    if dom.chrome_error:
        failures.append("chromium showed its network error page")
    if not dom.login_form:
        failures.append("no token form (#login-form) in the page")
    if body.get("data-auth") != "needed":
        failures.append("body data-auth is %r, not 'needed'" % body.get("data-auth"))
    if body.get("data-ready") == "1":
        failures.append("data was rendered without a valid token")
    if a.token and "refused" not in msg:
        failures.append("a wrong token should be reported as refused, the form says %r" % msg)
    if not os.path.exists(os.path.abspath(a.screenshot)):
        failures.append("screenshot was not written")
    if failures:
        log("FAIL: %d problem(s):" % len(failures))
        for f in failures:
            log("  - %s" % f)
        return 1
    log("PASS: the page asks for a token%s" % (" and says the wrong one was refused" if a.token else ""))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(2)
