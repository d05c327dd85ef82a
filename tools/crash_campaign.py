#!/usr/bin/env python3
"""crash_campaign: kill -9 salvod at random moments under load, judged at the receiving side.

Usage: tools/crash_campaign.py [--rounds N] [--seed S] [--min-kill SEC] [--max-kill SEC]
                               [--injectors N] [--pickup-rate PER_S] [--job-rate PER_S]
                               [--job-size N] [--job-window N] [--queue-in-memory N]
                               [--size BYTES]
                               [--build DIR] [--work-dir DIR] [--keep | --keep-failed] [--json]

What it runs (the real programs from --build, default ./build): one salvo-sink as the MX
(--maildir: every message it answered 250 to is kept), and salvod with fsync on, a pickup
directory, [routes] sending the test domains dN.crash.test to the sink (no DNS), [[shaping]]
allowing several connections, small spool segments (so segments are created and reclaimed
under the kills), and its control socket in the work directory.

Each round: salvod starts on the same spool; SMTP injector threads (smtplib, one message
and one recipient per transaction), a pickup writer (pickup/tmp/NAME.eml, then rename
into pickup/) and, with --job-rate, a writer of .json bulk jobs (--job-size recipients, one
template with per-recipient variables, so each copy is the template expanded) add mail while
salvod delivers to the sink; after a random delay (seeded:
--seed) salvod gets SIGKILL. Every message carries a unique token (recipient local part,
Subject, X-Crash-Token header). A token counts as acknowledged only after its 250 to the end
of data arrived (SMTP), or once the rename into pickup/ returned (pickup and jobs: the
hand-over; every recipient of a job is a token).

After each kill, before the restart: the sink is left to go quiet, every new maildir file
is read (token, and the whole message compared byte for byte with what was sent), and
spool-dump --json says which recipients salvod had not recorded as final. A token the sink
already holds whose recipient the spool still shows as not final is a transaction the sink
answered 250 to but salvod had not recorded: salvod will deliver it again, and that is the
one duplicate the round's kill allows (SPEC §5). A later copy of that token is attributed to
the kill that allowed it; a copy beyond every allowance is a duplicate over the bound.

After the last round salvod starts once more without load and runs until salvoctl status
shows an empty queue and pickup/ is empty (bounded), then gets SIGTERM. Verdict, at the
sink: lost = acknowledged tokens never delivered (must be 0); duplicates per round must not
exceed that round's allowance; every delivered copy must be whole; nothing unknown may
arrive; pickup/failed/ must stay empty; the spool must end with no live recipient.

Output: a table per round and cumulative totals (or one JSON object with --json); progress
on stderr. Every wait is bounded; everything started is stopped on exit (also on Ctrl-C or
SIGTERM), and the children die with this process (PR_SET_PDEATHSIG). The work directory is
removed at the end unless --keep (always) or --keep-failed (on exit 1 or 3).
Exit: 0 pass; 1 the verdict failed (loss, duplicates over the bound, a torn or unknown
delivery, ...); 2 bad usage or missing programs; 3 the campaign could not run (a program did
not start, a wait timed out, salvod died on its own); 130 interrupted.
"""
import argparse
import ctypes
import email.utils
import json
import os
import random
import shutil
import signal
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
import zlib

SENDER = "campaign@crash.test"
DOMAIN_SUFFIX = "crash.test"
FINAL_STATES = {"delivered", "bounced", "expired"}
PROGRAMS = ("salvod", "salvoctl", "salvo-sink", "spool-dump")


class CampaignError(Exception):
    """The campaign could not run (exit 3): not a verdict about salvo's durability."""


def log(msg):
    print(f"crash_campaign: {msg}", file=sys.stderr, flush=True)


def wait_until(pred, seconds, what, step=0.05):
    """Polls pred() until it returns a true value (returned) or SECONDS pass (CampaignError)."""
    deadline = time.monotonic() + seconds
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise CampaignError(f"timed out after {seconds:g} s waiting for {what}")
        time.sleep(step)


# ---- child processes ---------------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _die_with_parent():
    # Runs in the child between fork and exec: SIGKILL it if this process goes away, even
    # by SIGKILL (a ctest timeout), so no salvod or sink is left behind holding ports.
    # Children are only started while no other thread of this process runs.
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class Children:
    """Every process the campaign started, so all of them can be stopped on the way out."""

    def __init__(self):
        self.procs = []

    def start(self, argv, stdout, stderr):
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                             preexec_fn=_die_with_parent, close_fds=True)
        self.procs.append(p)
        return p

    def stop(self, p, seconds=30.0):
        """SIGTERM, up to SECONDS for it to exit, then SIGKILL. Returns its exit status."""
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=seconds)
            except subprocess.TimeoutExpired:
                log(f"pid {p.pid} ({os.path.basename(p.args[0])}) did not stop on SIGTERM "
                    f"within {seconds:g} s: killing it")
                p.kill()
                p.wait(timeout=10)
        return p.returncode

    def stop_all(self):
        for p in reversed(self.procs):
            try:
                self.stop(p, 10.0)
            except Exception as e:  # keep stopping the others
                log(f"stopping pid {p.pid}: {e}")
        self.procs = []


def read_ready_addresses(path):
    """The JSON list of "host:port" a salvod or salvo-sink ready file holds, or None."""
    try:
        with open(path) as f:
            text = f.read()
        if not text.strip():
            return None
        return json.loads(text)
    except (OSError, ValueError):
        return None


def split_hostport(addr):
    host, _, port = addr.rpartition(":")
    return host.strip("[]"), int(port)


# ---- messages ----------------------------------------------------------------------------

class Messages:
    """The message for a token: deterministic, so a delivered copy can be checked whole."""

    def __init__(self, size, domains):
        self.size = size
        self.domains = domains
        self.date = email.utils.formatdate(usegmt=True)

    def domain(self, token):
        return f"d{zlib.crc32(token.encode()) % self.domains}.{DOMAIN_SUFFIX}"

    def recipient(self, token):
        return f"{token}@{self.domain(token)}"

    def content(self, token):
        head = (f"From: Crash Campaign <{SENDER}>\r\n"
                f"To: <{self.recipient(token)}>\r\n"
                f"Subject: crash campaign {token}\r\n"
                f"Date: {self.date}\r\n"
                f"Message-ID: <{token}@{DOMAIN_SUFFIX}>\r\n"
                f"X-Crash-Token: {token}\r\n"
                "\r\n")
        lines = []
        n = max(1, (self.size - len(head)) // 78)
        filler = "abcdefghijklmnopqrstuvwxyz0123456789" * 3
        for i in range(n):  # no line starts with '.': nothing to dot-stuff
            lines.append((f"{token} {i:05d} " + filler)[:76] + "\r\n")
        return (head + "".join(lines)).encode()

    def pickup_file(self, token):
        env = f"X-Sender: {SENDER}\r\nX-Receiver: {self.recipient(token)}\r\n"
        return env.encode() + self.content(token)

    def job_content(self, token, rcpt=None):
        """What a job recipient's copy ends with: the job's template expanded with its
        variables t (the token) and rcpt (the address). Lines are not cut at a fixed width,
        so the same text with "{{t}}" and "{{rcpt}}" in it is the template."""
        rcpt = self.recipient(token) if rcpt is None else rcpt
        head = (f"From: Crash Campaign <{SENDER}>\r\n"
                f"To: <{rcpt}>\r\n"
                f"Subject: crash campaign job {token}\r\n"
                f"Date: {self.date}\r\n"
                f"Message-ID: <{token}@{DOMAIN_SUFFIX}>\r\n"
                f"X-Crash-Token: {token}\r\n"
                "\r\n")
        filler = "abcdefghijklmnopqrstuvwxyz0123456789"
        n = max(1, (self.size - 300) // 64)  # never from the token: the template has none
        lines = "".join(f"{token} {i:05d} {filler}\r\n" for i in range(n))
        return head + lines

    def expected(self, token, kind):
        if kind == "job":
            return self.job_content(token).encode()
        return self.content(token)

    def job_file(self, job, tokens):
        """A .json bulk job: one template, one recipient per token."""
        return json.dumps({
            "from": SENDER, "job": job,
            "content": self.job_content("{{t}}", "{{rcpt}}"),
            "recipients": [{"email": self.recipient(t),
                            "vars": {"t": t, "rcpt": self.recipient(t)}} for t in tokens],
        }).encode()


# ---- load: SMTP injectors and the pickup writer --------------------------------------------

class RoundLoad:
    """What one round's load threads did. Threads append under the lock."""

    def __init__(self, known):
        self.lock = threading.Lock()
        self.known = known         # token -> "smtp" | "pickup" | "job", set before it is sent
        self.acked_smtp = []       # 250 to the end of data seen
        self.acked_pickup = []     # renamed into pickup/
        self.acked_jobs = []       # recipients of .json jobs renamed into pickup/
        self.unacked = []          # transaction begun, no reply seen (the kill)
        self.refused = []          # (token, code, text): salvod answered an error code
        self.connect_failures = 0
        self.errors = []           # a load thread that failed (not the connection's fault)


def smtp_injector(messages, round_no, idx, addr, stop, out):
    host, port = split_hostport(addr)
    seq = 0
    while not stop.is_set():
        try:
            s = smtplib.SMTP(host, port, local_hostname="injector.crash.test", timeout=10)
        except OSError:
            with out.lock:
                out.connect_failures += 1
            stop.wait(0.02)
            continue
        try:
            while not stop.is_set():
                token = f"r{round_no:04d}s{idx}n{seq:06d}"
                seq += 1
                out.known[token] = "smtp"
                try:
                    s.sendmail(SENDER, [messages.recipient(token)], messages.content(token))
                except smtplib.SMTPResponseException as e:
                    with out.lock:
                        out.refused.append((token, e.smtp_code, str(e.smtp_error)))
                    raise
                except smtplib.SMTPRecipientsRefused as e:
                    with out.lock:
                        for code, text in e.recipients.values():
                            out.refused.append((token, code, str(text)))
                    raise
                except BaseException:
                    with out.lock:
                        out.unacked.append(token)
                    raise
                with out.lock:
                    out.acked_smtp.append(token)
        except (OSError, smtplib.SMTPException):
            pass  # the connection is gone (salvod killed) or in an unknown state: reconnect
        except Exception as e:  # a bug here: say so rather than quietly lose an injector
            with out.lock:
                out.errors.append(f"SMTP injector {idx}: {e!r}")
            return
        finally:
            try:
                s.close()
            except OSError:
                pass


def paced_drops(what, pickup_dir, rate, stop, out, make):
    """RATE files a second into pickup/: make(seq) gives (name, content, tokens, acked list);
    each is written under pickup/tmp/ and renamed in, and its tokens count as acknowledged
    once the rename returned (the hand-over)."""
    interval = 1.0 / rate
    next_at = time.monotonic()
    seq = 0
    try:
        while not stop.is_set():
            name, content, tokens, acked = make(seq)
            seq += 1
            tmp = os.path.join(pickup_dir, "tmp", name)
            with open(tmp, "wb") as f:
                f.write(content)
            os.rename(tmp, os.path.join(pickup_dir, name))
            with out.lock:
                acked.extend(tokens)
            next_at += interval
            delay = next_at - time.monotonic()
            if delay > 0:
                stop.wait(delay)
            else:
                next_at = time.monotonic()
    except OSError as e:
        with out.lock:
            out.errors.append(f"{what}: {e}")


def pickup_writer(messages, round_no, pickup_dir, rate, stop, out):
    def make(seq):
        token = f"r{round_no:04d}p{seq:06d}"
        out.known[token] = "pickup"
        return token + ".eml", messages.pickup_file(token), [token], out.acked_pickup
    paced_drops("pickup writer", pickup_dir, rate, stop, out, make)


def job_writer(messages, round_no, pickup_dir, rate, size, stop, out):
    """Bulk jobs: RATE .json files a second into pickup/, SIZE recipients each."""
    def make(seq):
        job = f"r{round_no:04d}j{seq:04d}"
        tokens = [f"{job}k{i:05d}" for i in range(size)]
        for t in tokens:
            out.known[t] = "job"
        return job + ".json", messages.job_file(job, tokens), tokens, out.acked_jobs
    paced_drops("job writer", pickup_dir, rate, stop, out, make)


# ---- the receiving side: the sink's maildir -------------------------------------------------

class SinkMaildir:
    """Reads what salvo-sink kept: each new/ file once, giving its token and whether it is
    exactly the message sent for that token. A checked copy is then moved to cur/ (as a mail
    reader does) when every copy is kept, to bad/ when something is wrong with it, and
    otherwise removed: its content is a function of its token, and deliveries.log in the
    work directory says what arrived when."""

    def __init__(self, path, messages, known, keep_copies):
        self.new = os.path.join(path, "new")
        self.cur = os.path.join(path, "cur")
        self.tmp = os.path.join(path, "tmp")
        self.bad = os.path.join(path, "bad")
        self.messages = messages
        self.known = known        # token -> "smtp" | "pickup" | "job": everything ever generated
        self.keep_copies = keep_copies
        self.files = 0

    def collect(self):
        """New arrivals since the last call: a list of (file name, token or None, problem or
        None), in the order the sink wrote them."""
        out = []
        try:
            names = sorted(os.listdir(self.new), key=self.write_order)
        except FileNotFoundError:
            return out
        for name in names:
            src = os.path.join(self.new, name)
            with open(src, "rb") as f:
                data = f.read()
            token, problem = self.check(name, data)
            if self.keep_copies:
                os.rename(src, os.path.join(self.cur, name))
            elif problem:
                os.makedirs(self.bad, exist_ok=True)
                os.rename(src, os.path.join(self.bad, name))
            else:
                os.unlink(src)
            self.files += 1
            out.append((name, token, problem))
        return out

    @staticmethod
    def write_order(name):
        # salvo-sink names a copy SECONDS.S<shard>Q<seq>P<pid>.sink, seq counting the copies
        # of the whole sink in the order it began writing them.
        q, p = name.find("Q"), name.find("P")
        seq = name[q + 1:p] if 0 <= q < p else ""
        return (0, int(seq), name) if seq.isdigit() else (1, 0, name)

    def check(self, name, data):
        head_end = data.find(b"\r\n\r\n")
        head = data[:head_end if head_end >= 0 else len(data)].decode("utf-8", "replace")
        token = None
        delivered_to = []
        for line in head.split("\r\n"):
            low = line.lower()
            if low.startswith("x-crash-token:"):
                token = line.split(":", 1)[1].strip()
            elif low.startswith("delivered-to:"):
                delivered_to.append(line.split(":", 1)[1].strip())
        if token is None:
            return None, f"{name}: no X-Crash-Token header"
        if token not in self.known:
            return token, f"{name}: token {token} was never sent"
        if delivered_to != [self.messages.recipient(token)]:
            return token, f"{name}: Delivered-To {delivered_to} for token {token}"
        if not data.endswith(self.messages.expected(token, self.known[token])):
            return token, f"{name}: token {token}: not the message sent (torn or altered)"
        return token, None

    def quiet(self):
        """True when no file is being written (tmp/ empty) and none waits in new/."""
        try:
            return not os.listdir(self.tmp) and not os.listdir(self.new)
        except FileNotFoundError:
            return True


# ---- the ledger: copies, allowances, verdict -----------------------------------------------

class Ledger:
    """Copies per token at the sink, and the duplicates each kill allows.

    Window k holds the arrivals between the snapshot after kill k-1 and the snapshot after
    kill k (window rounds+1: the final drain). A token's first copy is a delivery; every
    later copy is a duplicate and uses one allowance: the oldest kill that left that token
    delivered at the sink but not recorded in the spool. A duplicate with no allowance left
    is over the bound, counted against the kill before the window it arrived in."""

    def __init__(self, rounds):
        n = rounds + 2
        self.copies = {}
        self.outstanding = {}          # token -> [kill rounds, oldest first]
        self.allowed = [0] * n         # by kill round
        self.dups = [0] * n            # by the kill round that allowed them
        self.over = [0] * n            # by the kill before their arrival (0: before any)
        self.first = [0] * n           # first copies, by arrival window
        self.arrived = [0] * n         # every copy, by arrival window
        self.over_tokens = []
        self.problems = []             # torn, unknown, ... (verdict failures)

    def absorb(self, arrivals, window):
        for _, token, problem in arrivals:
            self.arrived[window] += 1
            if problem:
                self.problems.append(problem)
            if token is None:
                continue
            n = self.copies.get(token, 0)
            self.copies[token] = n + 1
            if n == 0:
                self.first[window] += 1
                continue
            q = self.outstanding.get(token)
            if q:
                self.dups[q.pop(0)] += 1
            else:
                self.over[window - 1] += 1
                self.over_tokens.append((token, window - 1))

    def after_kill(self, kill_round, live):
        """live: the tokens whose recipient the spool shows as not final after the kill."""
        for token in live:
            if self.copies.get(token, 0) > 0 and not self.outstanding.get(token):
                self.outstanding.setdefault(token, []).append(kill_round)
                self.allowed[kill_round] += 1

    def unused_allowances(self):
        return sum(len(q) for q in self.outstanding.values())


# ---- the spool, through spool-dump ----------------------------------------------------------

def spool_snapshot(build, spool):
    """Recipients not final in the spool: (set of tokens, dict of counts, list of problems)."""
    r = subprocess.run([os.path.join(build, "spool-dump"), spool, "--json"],
                       capture_output=True, timeout=120)
    if r.returncode != 0:
        raise CampaignError(f"spool-dump {spool} failed ({r.returncode}): "
                            f"{r.stderr.decode(errors='replace').strip()}")
    shards = json.loads(r.stdout)
    live = set()
    counts = {"messages": 0, "live": 0, "torn_segments": 0, "bad_segments": 0}
    problems = []
    for shard in shards:
        counts["torn_segments"] += shard.get("torn_segments", 0)
        counts["bad_segments"] += shard.get("bad_segments", 0)
        for m in shard["messages"]:
            counts["messages"] += 1
            if "error" in m:
                problems.append(f"spool message {m['id']}: {m['error']}")
                continue
            for rc in m["recipients"]:
                if rc["state"] not in FINAL_STATES:
                    counts["live"] += 1
                    live.add(rc["address"].split("@", 1)[0])
    return live, counts, problems


# ---- the campaign --------------------------------------------------------------------------

class Campaign:
    def __init__(self, args, work):
        self.args = args
        self.build = os.path.abspath(args.build)
        self.work = work
        self.children = Children()
        self.rng = random.Random(args.seed)
        self.messages = Messages(args.size, args.domains)
        self.known = {}
        self.sink = None
        self.sink_addr = None
        self.salvod = None
        self.salvod_starts = 0
        self.spool = os.path.join(work, "spool")
        self.pickup = os.path.join(work, "pickup")
        self.config = os.path.join(work, "salvo.toml")
        self.salvod_log = os.path.join(work, "salvod.log")
        self.maildir = SinkMaildir(os.path.join(work, "maildir"), self.messages, self.known,
                                   args.keep)
        self.deliveries = open(os.path.join(work, "deliveries.log"), "w")
        self.ledger = Ledger(args.rounds)
        self.rows = []
        self.acked = {}                # token -> "smtp" | "pickup" | "job"
        self.unacked = set()
        self.refused = []
        self.failed_pickups = []
        self.final = {}
        self.extra_dirs = []           # a short directory for the control socket, if needed

    def take_arrivals(self, window):
        """Reads the sink's new copies into the ledger (window: the round, or rounds + 1 for
        the drain) and notes each in deliveries.log."""
        arrivals = self.maildir.collect()
        for name, token, problem in arrivals:
            self.deliveries.write(f"{window} {name} {token} {problem or 'ok'}\n")
        self.ledger.absorb(arrivals, window)

    # -- processes

    def start_sink(self):
        ready = os.path.join(self.work, "sink.ready")
        argv = [os.path.join(self.build, "salvo-sink"), "--listen", "127.0.0.1:0",
                "--cores", "1", "--pin", "off", "--maildir", os.path.join(self.work, "maildir"),
                "--ready-file", ready, "--progress-file", os.path.join(self.work, "sink.progress")]
        if self.args.sink_defer_rate > 0:
            # 4.2.1 (mailbox busy): the recipient waits, the destination is not throttled.
            argv += ["--defer-rate", str(self.args.sink_defer_rate), "--defer-status", "4.2.1"]
        with open(os.path.join(self.work, "sink.json"), "wb") as out, \
                open(os.path.join(self.work, "sink.log"), "ab") as err:
            self.sink = self.children.start(argv, out, err)

        def ready_or_gone():
            if self.sink.poll() is not None:
                raise CampaignError(f"salvo-sink exited ({self.sink.returncode}); see "
                                    f"{self.work}/sink.log")
            return read_ready_addresses(ready)

        self.sink_addr = wait_until(ready_or_gone, 20, "salvo-sink to listen")[0]

    def write_config(self):
        sock = os.path.join(self.work, "ctl.sock")
        if len(sock) > 100:  # sun_path: 108 bytes
            sock = os.path.join(tempfile.mkdtemp(prefix="salvo-crash-sock-"), "ctl.sock")
            self.extra_dirs.append(os.path.dirname(sock))
        host, port = split_hostport(self.sink_addr)
        routes = "\n".join(f'"d{i}.{DOMAIN_SUFFIX}" = ["{host}:{port}"]'
                           for i in range(self.args.domains))
        punch = (f'spool_punch_interval = "{self.args.punch_interval}"\n'
                 if self.args.punch_interval else "")
        window = f"job_window = {self.args.job_window}\n" if self.args.job_window else ""
        if self.args.queue_in_memory:
            window += f"queue_in_memory = {self.args.queue_in_memory}\n"
        text = f"""# written by tools/crash_campaign.py
[node]
hostname = "mta.{DOMAIN_SUFFIX}"
cores = {self.args.cores}
spool = "{self.spool}"
pickup = "{self.pickup}"
log_dir = "{self.work}/log"
control_socket = "{sock}"
fsync = true
spool_reserve = "0"
spool_segment_size = "{self.args.segment_size}"
max_connections = 1000
{punch}
[[listen]]
address = "127.0.0.1:0"
max_connections_per_ip = 10000

[dns]
resolvers = ["127.0.0.1:9"]

[delivery]
retry_schedule = ["1s"]
{window}
[[shaping]]
domain = "*"
max_connections = {self.args.connections}
max_messages_per_connection = 50

[routes]
{routes}
"""
        with open(self.config, "w") as f:
            f.write(text)

    def start_salvod(self, label):
        self.salvod_starts += 1
        ready = os.path.join(self.work, "salvod.ready")
        try:
            os.unlink(ready)
        except FileNotFoundError:
            pass
        with open(self.salvod_log, "ab") as err:
            err.write(f"\n==== crash_campaign: start {self.salvod_starts} ({label})\n".encode())
            err.flush()
            argv = [os.path.join(self.build, "salvod"), "--config", self.config,
                    "--ready-file", ready, "--log-level", "info"]
            self.salvod = self.children.start(argv, subprocess.DEVNULL, err)

        def ready_or_gone():
            if self.salvod.poll() is not None:
                raise CampaignError(f"salvod exited ({self.salvod.returncode}) while starting "
                                    f"({label}); see {self.salvod_log}")
            return read_ready_addresses(ready)

        return wait_until(ready_or_gone, 60, f"salvod to start ({label})")[0]

    def kill_salvod(self):
        self.salvod.send_signal(signal.SIGKILL)
        try:
            self.salvod.wait(timeout=10)
        except subprocess.TimeoutExpired:
            raise CampaignError(f"salvod (pid {self.salvod.pid}) still there 10 s after SIGKILL")
        self.children.procs.remove(self.salvod)

    def salvoctl_status(self):
        r = subprocess.run([os.path.join(self.build, "salvoctl"), "--config", self.config,
                            "status", "--json"], capture_output=True, timeout=15)
        if r.returncode != 0:
            return None
        try:
            return json.loads(r.stdout)
        except ValueError:
            return None

    def settle_sink(self, window):
        """After salvod is gone: waits until the sink has written everything it will (nothing
        in tmp/ or new/ for 0.3 s) and takes in every new copy."""
        quiet_since = None
        deadline = time.monotonic() + 15
        while True:
            self.take_arrivals(window)
            now = time.monotonic()
            if self.maildir.quiet():
                quiet_since = quiet_since or now
                if now - quiet_since >= 0.3:
                    return
            else:
                quiet_since = None
            if now >= deadline:
                raise CampaignError("the sink's maildir did not go quiet within 15 s")
            time.sleep(0.05)

    # -- one round

    def run_round(self, k):
        addr = self.start_salvod(f"round {k}")
        delay = self.rng.uniform(self.args.min_kill, self.args.max_kill)
        load = RoundLoad(self.known)
        stop = threading.Event()
        threads = [threading.Thread(target=smtp_injector, name=f"smtp-{i}", daemon=True,
                                    args=(self.messages, k, i, addr, stop, load))
                   for i in range(self.args.injectors)]
        if self.args.pickup_rate > 0:
            threads.append(threading.Thread(target=pickup_writer, name="pickup", daemon=True,
                                            args=(self.messages, k, self.pickup,
                                                  self.args.pickup_rate, stop, load)))
        if self.args.job_rate > 0:
            threads.append(threading.Thread(target=job_writer, name="jobs", daemon=True,
                                            args=(self.messages, k, self.pickup,
                                                  self.args.job_rate, self.args.job_size,
                                                  stop, load)))
        t0 = time.monotonic()
        for t in threads:
            t.start()
        try:
            while time.monotonic() - t0 < delay:
                self.take_arrivals(k)
                if self.salvod.poll() is not None:
                    raise CampaignError(f"round {k}: salvod exited by itself "
                                        f"(status {self.salvod.returncode}); see "
                                        f"{self.salvod_log}")
                time.sleep(min(0.05, max(0.0, delay - (time.monotonic() - t0))))
            self.kill_salvod()
            killed_after = time.monotonic() - t0
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=30)
            hung = [t.name for t in threads if t.is_alive()]
        if hung:
            raise CampaignError(f"round {k}: load threads {hung} did not stop within 30 s")
        if load.errors:
            raise CampaignError(f"round {k}: {load.errors[0]}")
        for t in load.acked_smtp:
            self.acked[t] = "smtp"
        for t in load.acked_pickup:
            self.acked[t] = "pickup"
        for t in load.acked_jobs:
            self.acked[t] = "job"
        self.unacked.update(load.unacked)
        self.refused.extend((k,) + r for r in load.refused)

        self.settle_sink(k)
        live, counts, problems = spool_snapshot(self.build, self.spool)
        self.ledger.problems.extend(f"after kill {k}: {p}" for p in problems)
        self.ledger.after_kill(k, live)
        row = {"round": k, "kill_ms": round(killed_after * 1000),
               "acked_smtp": len(load.acked_smtp), "acked_pickup": len(load.acked_pickup),
               "acked_jobs": len(load.acked_jobs),
               "unacked": len(load.unacked), "refused": len(load.refused),
               "spool_live": counts["live"], "torn_segments": counts["torn_segments"],
               "bad_segments": counts["bad_segments"]}
        self.rows.append(row)
        return row

    # -- the end: drain, stop, look

    def drain(self):
        self.start_salvod("drain")
        window = self.args.rounds + 1
        t0 = time.monotonic()
        status = {}

        def drained():
            nonlocal status
            self.take_arrivals(window)
            if self.salvod.poll() is not None:
                raise CampaignError(f"salvod exited by itself while draining "
                                    f"(status {self.salvod.returncode}); see {self.salvod_log}")
            s = self.salvoctl_status()
            if s is None or "queue" not in s:
                return False
            status = s
            q = s["queue"]
            waiting = [n for n in os.listdir(self.pickup)
                       if n.endswith((".eml", ".json")) and not n.startswith(".")]
            # The queue counts leave out what a background recovery has not read yet.
            recovering = s.get("recovery", {}).get("running", 0) != 0
            return q["recipients"] == 0 and q["messages"] == 0 and not waiting and not recovering

        try:
            wait_until(drained, self.args.drain_timeout, "salvod to deliver everything queued",
                       step=0.2)
        except CampaignError as e:
            q = status.get("queue", {})
            raise CampaignError(f"{e} (last status: queue {q})") from None
        drain_s = time.monotonic() - t0
        rc = self.children.stop(self.salvod, 60)
        self.children.procs.remove(self.salvod)
        if rc != 0:
            self.ledger.problems.append(f"salvod exited {rc} on SIGTERM after the drain")
        self.settle_sink(window)
        live, counts, problems = spool_snapshot(self.build, self.spool)
        self.ledger.problems.extend(f"after the drain: {p}" for p in problems)
        if counts["live"]:
            self.ledger.problems.append(
                f"after the drain the spool still holds {counts['live']} recipients not final "
                f"(e.g. {sorted(live)[:5]})")
        failed_dir = os.path.join(self.pickup, "failed")
        self.failed_pickups = sorted(os.listdir(failed_dir)) if os.path.isdir(failed_dir) else []
        if self.failed_pickups:
            self.ledger.problems.append(f"pickup/failed/ holds {self.failed_pickups[:6]}")
        out = status.get("out", {})
        self.final = {"drain_s": round(drain_s, 2), "deferrals": out.get("deferrals", 0),
                      "bounced": out.get("bounced", 0), "expired": out.get("expired", 0)}
        for key in ("bounced", "expired"):
            if self.final[key]:
                self.ledger.problems.append(f"salvod {key} {self.final[key]} recipients "
                                            "while draining (the sink accepts everything)")

    def run(self):
        self.t0 = time.monotonic()
        os.makedirs(os.path.join(self.pickup, "tmp"), exist_ok=True)
        self.start_sink()
        self.write_config()
        for k in range(1, self.args.rounds + 1):
            row = self.run_round(k)
            if not self.args.quiet:
                log(f"round {k}/{self.args.rounds}: killed after {row['kill_ms']} ms; acked "
                    f"{row['acked_smtp']} smtp + {row['acked_pickup']} pickup + "
                    f"{row['acked_jobs']} job recipients; spool live "
                    f"{row['spool_live']}; sink copies {self.maildir.files}; "
                    f"allowed {self.ledger.allowed[k]}")
        self.drain()
        self.children.stop(self.sink, 30)
        self.deliveries.close()
        return self.verdict()

    def verdict(self):
        led = self.ledger
        lost = sorted(t for t in self.acked if led.copies.get(t, 0) == 0)
        lost_smtp = sum(1 for t in lost if self.acked[t] == "smtp")
        lost_jobs = sum(1 for t in lost if self.acked[t] == "job")
        n = self.args.rounds
        for row in self.rows:
            k = row["round"]
            row.update(delivered=led.first[k], copies=led.arrived[k], allowed=led.allowed[k],
                       duplicates=led.dups[k], over=led.over[k])
        totals = {
            "rounds": n,
            "acked_smtp": sum(1 for v in self.acked.values() if v == "smtp"),
            "acked_pickup": sum(1 for v in self.acked.values() if v == "pickup"),
            "acked_jobs": sum(1 for v in self.acked.values() if v == "job"),
            "sent_unacked": len(self.unacked),
            "unacked_delivered": sum(1 for t in self.unacked if led.copies.get(t, 0) > 0),
            "refused": len(self.refused),
            "delivered": len(led.copies),
            "copies": sum(led.copies.values()),
            "lost": len(lost),
            "lost_smtp": lost_smtp,
            "lost_pickup": len(lost) - lost_smtp - lost_jobs,
            "lost_jobs": lost_jobs,
            "duplicates": sum(led.dups) + sum(led.over),
            "allowed": sum(led.allowed),
            "over_bound": sum(led.over),
            "max_duplicates_per_round": max(led.dups[1:n + 1], default=0),
            "unused_allowances": led.unused_allowances(),
            "kills_with_torn_tail": sum(1 for r in self.rows if r["torn_segments"]),
            "kills_with_bad_segment": sum(1 for r in self.rows if r["bad_segments"]),
            "drain_delivered": led.first[n + 1],
            "drain_copies": led.arrived[n + 1],
        }
        totals.update(self.final)
        totals["elapsed_s"] = round(time.monotonic() - self.t0, 1)
        failures = []
        if lost:
            failures.append(f"LOST: {len(lost)} acknowledged messages never reached the sink "
                            f"({lost_smtp} smtp, {len(lost) - lost_smtp - lost_jobs} pickup, "
                            f"{lost_jobs} job recipients), e.g. "
                            f"{lost[:8]}")
        if led.over_tokens:
            where = ", ".join(f"{t} (after kill {r})" if r else f"{t} (before any kill)"
                              for t, r in led.over_tokens[:8])
            failures.append(f"DUPLICATES OVER THE BOUND: {len(led.over_tokens)} copies beyond "
                            f"what the kills allowed: {where}")
        failures.extend(led.problems[:20])
        if len(led.problems) > 20:
            failures.append(f"... and {len(led.problems) - 20} more problems")
        warnings = []
        if totals["unused_allowances"]:
            warnings.append(f"{totals['unused_allowances']} delivered-but-unrecorded "
                            "transactions were never delivered again (expected: each once)")
        if totals["kills_with_bad_segment"]:
            warnings.append(f"after {totals['kills_with_bad_segment']} kills the spool held a "
                            "segment with a bad header (quarantined by recovery)")
        if self.refused:
            warnings.append(f"salvod refused {len(self.refused)} SMTP transactions, e.g. "
                            f"{self.refused[:3]}")
        if totals["acked_smtp"] + totals["acked_pickup"] + totals["acked_jobs"] == 0:
            failures.append("nothing was acknowledged: the load never reached salvod")
        return {"seed": self.args.seed, "rounds": self.rows, "totals": totals,
                "failures": failures, "warnings": warnings,
                "verdict": "fail" if failures else "pass"}


# ---- output --------------------------------------------------------------------------------

COLUMNS = [("round", "round"), ("kill_ms", "kill ms"), ("acked_smtp", "ack smtp"),
           ("acked_pickup", "ack pickup"), ("acked_jobs", "ack job"), ("unacked", "no 250"), ("delivered", "delivered"),
           ("copies", "copies"), ("spool_live", "spool live"), ("torn_segments", "torn"),
           ("allowed", "allowed"),
           ("duplicates", "dups"), ("over", "over")]


def print_table(result, command):
    print(f"crash campaign: {command}")
    print(f"seed {result['seed']}")
    widths = [max(len(h), 7) for _, h in COLUMNS]
    print("  ".join(h.rjust(w) for (_, h), w in zip(COLUMNS, widths)))
    for row in result["rounds"]:
        print("  ".join(str(row[k]).rjust(w) for (k, _), w in zip(COLUMNS, widths)))
    t = result["totals"]
    drain = {"round": "drain", "delivered": t["drain_delivered"], "copies": t["drain_copies"]}
    print("  ".join(str(drain.get(k, "")).rjust(w) for (k, _), w in zip(COLUMNS, widths)))
    sums = {k: sum(r[k] for r in result["rounds"]) for k, _ in COLUMNS[2:]}
    sums["delivered"] += t["drain_delivered"]
    sums["copies"] += t["drain_copies"]
    sums.update(round="total", kill_ms="", spool_live="", torn_segments="")
    print("  ".join(str(sums[k]).rjust(w) for (k, _), w in zip(COLUMNS, widths)))
    print()
    print("columns: ack = acknowledged (SMTP 250 seen; pickup rename done); no 250 = SMTP "
          "transactions begun but not acknowledged (the kill); delivered / copies = first copies "
          "/ all copies arriving at the sink in the round (drain: after the last restart); "
          "spool live = recipients not final in the spool after the kill; torn = segments whose "
          "tail the kill tore (a write under way: dropped by recovery); allowed = recipients "
          "not final in the spool whose copy the sink already had (answered 250, not "
          "recorded); dups = later copies "
          "charged to this kill; over = copies beyond any allowance, arriving after this kill")
    print()
    print(f"rounds                 {t['rounds']} in {t['elapsed_s']} s")
    print(f"acknowledged           {t['acked_smtp'] + t['acked_pickup'] + t['acked_jobs']} "
          f"({t['acked_smtp']} via SMTP, {t['acked_pickup']} via pickup, {t['acked_jobs']} "
          "job recipients)")
    print(f"sent without a 250     {t['sent_unacked']} ({t['unacked_delivered']} of them "
          "delivered anyway)")
    print(f"delivered              {t['delivered']} messages, {t['copies']} copies at the sink "
          f"({t['drain_delivered']} first copies during the final drain of {t['drain_s']} s)")
    print(f"torn segment tails     after {t['kills_with_torn_tail']} of {t['rounds']} kills")
    print(f"lost                   {t['lost']}")
    print(f"duplicates             {t['duplicates']} (allowed {t['allowed']}, over the bound "
          f"{t['over_bound']}, most in one round {t['max_duplicates_per_round']})")
    print(f"verdict                {result['verdict'].upper()}")
    for w in result["warnings"]:
        print(f"warning: {w}")
    for f in result["failures"]:
        print(f"FAILURE: {f}")


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="crash_campaign.py",
        description="kill -9 salvod at random moments under SMTP + pickup + delivery load; "
                    "check at the receiving salvo-sink that nothing acknowledged is lost and "
                    "duplicates stay within what each kill allows.",
        epilog="See the module docstring (head of this file) and docs/reliability.md.")
    p.add_argument("--rounds", type=int, default=20, help="kill -9 rounds (default 20)")
    p.add_argument("--seed", type=int, default=None, help="RNG seed (default: random, printed)")
    p.add_argument("--min-kill", type=float, default=0.1,
                   help="shortest time from salvod ready to SIGKILL, seconds (default 0.1)")
    p.add_argument("--max-kill", type=float, default=2.0,
                   help="longest time from salvod ready to SIGKILL, seconds (default 2.0)")
    p.add_argument("--injectors", type=int, default=4,
                   help="SMTP injector threads, one connection each (default 4)")
    p.add_argument("--pickup-rate", type=float, default=100,
                   help=".eml files per second into pickup/; 0 = none (default 100)")
    p.add_argument("--job-rate", type=float, default=0,
                   help=".json bulk jobs per second into pickup/; 0 = none (default 0)")
    p.add_argument("--job-size", type=int, default=40,
                   help="recipients per .json job (default 40)")
    p.add_argument("--job-window", type=int, default=0,
                   help="salvod [delivery] job_window: job recipients each shard keeps "
                        "dispatched and not final (default: salvod's)")
    p.add_argument("--queue-in-memory", type=int, default=0,
                   help="salvod [delivery] queue_in_memory: ready recipients per destination "
                        "in RAM, the rest in the spill files (default: salvod's)")
    p.add_argument("--size", type=int, default=2048, help="message size in bytes (default 2048)")
    p.add_argument("--domains", type=int, default=4,
                   help="recipient domains, each a destination routed to the sink (default 4)")
    p.add_argument("--connections", type=int, default=4,
                   help="[[shaping]] max_connections per destination (default 4)")
    p.add_argument("--cores", type=int, default=2, help="salvod [node] cores (default 2)")
    p.add_argument("--segment-size", default="1MB",
                   help="salvod [node] spool_segment_size (default 1MB: many segment changes)")
    p.add_argument("--punch-interval", default=None,
                   help="salvod [node] spool_punch_interval (default: salvod's), e.g. 200ms "
                        "to punch dead records out of closed segments while kills come")
    p.add_argument("--sink-defer-rate", type=float, default=0,
                   help="fraction of RCPTs the sink answers 451 4.2.1 (retried 1 s later; "
                        "default 0)")
    p.add_argument("--drain-timeout", type=float, default=180,
                   help="seconds the final drain may take (default 180)")
    p.add_argument("--build", default="build", help="build directory (default ./build)")
    p.add_argument("--work-dir", default=None,
                   help="where the temporary directory is made (default: the system's)")
    keep = p.add_mutually_exclusive_group()
    keep.add_argument("--keep", action="store_true", help="keep the temporary directory")
    keep.add_argument("--keep-failed", action="store_true",
                      help="keep the temporary directory when the verdict fails or the "
                           "campaign cannot run (exit 1 or 3)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead")
    p.add_argument("--quiet", action="store_true", help="no progress line per round")
    a = p.parse_args(argv)
    if a.rounds < 1 or a.injectors < 0 or a.domains < 1 or a.connections < 1 or a.cores < 0:
        p.error("--rounds, --domains and --connections must be at least 1, --injectors and "
                "--cores at least 0")
    if not 0 <= a.min_kill <= a.max_kill:
        p.error("need 0 <= --min-kill <= --max-kill")
    if a.size < 256 or a.pickup_rate < 0 or a.job_rate < 0 or a.job_size < 1 or \
            a.drain_timeout <= 0 or a.job_window < 0 or a.queue_in_memory < 0:
        p.error("--size at least 256, --pickup-rate, --job-rate and --job-window at least 0, "
                "--job-size at least 1, --drain-timeout above 0")
    if a.injectors == 0 and a.pickup_rate == 0 and a.job_rate == 0:
        p.error("no load: give --injectors, --pickup-rate or --job-rate")
    if a.seed is None:
        a.seed = int.from_bytes(os.urandom(4), "little")
    return a


def _interrupt(signum, frame):
    raise KeyboardInterrupt()


def main(argv):
    args = parse_args(argv)
    missing = [p for p in PROGRAMS if not os.access(os.path.join(args.build, p), os.X_OK)]
    if missing:
        print(f"crash_campaign: {', '.join(missing)} not found in {args.build}/ (build them: "
              "cmake --build BUILD --target salvod salvoctl salvo-sink spool-dump)",
              file=sys.stderr)
        return 2
    command = "tools/crash_campaign.py " + " ".join(argv)
    if "--seed" not in argv:
        command += f" --seed {args.seed}"
    # SIGTERM unwinds like Ctrl-C, so the finally below stops what was started.
    signal.signal(signal.SIGTERM, _interrupt)
    work = tempfile.mkdtemp(prefix="salvo-crash-", dir=args.work_dir)
    work = os.path.abspath(work)
    log(f"seed {args.seed}; work directory {work}")
    campaign = Campaign(args, work)
    result = None
    rc = 3
    try:
        result = campaign.run()
        rc = 1 if result["failures"] else 0
    except CampaignError as e:
        log(f"the campaign could not run: {e}")
        rc = 3
        if campaign.rows:
            # What ran before the error; without the final drain, loss is not judged.
            done = campaign.rows
            log(f"{len(done)} round(s) had run: acknowledged "
                f"{sum(r['acked_smtp'] for r in done)} smtp + "
                f"{sum(r['acked_pickup'] for r in done)} pickup + "
                f"{sum(r['acked_jobs'] for r in done)} job recipients; last kill after "
                f"{done[-1]['kill_ms']} ms; not drained, so nothing is judged lost or "
                "duplicated")
    except KeyboardInterrupt:
        log("interrupted")
        rc = 130
    finally:
        campaign.children.stop_all()
        campaign.deliveries.close()
        keep = args.keep or (args.keep_failed and rc in (1, 3))
        for d in campaign.extra_dirs:
            shutil.rmtree(d, ignore_errors=True)
        if keep:
            log(f"kept {work} (salvod.log, spool/, deliveries.log, maildir/, pickup/, log/)")
        else:
            shutil.rmtree(work, ignore_errors=True)
    if result is not None:
        if args.json:
            result["command"] = command
            print(json.dumps(result, indent=2))
        else:
            print_table(result, command)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
