"""App logs against a real pod: each app's stdout and stderr go to the pod's
log daemon (pm-logd.service), which keeps /var/log/<ns>/<name>.log (plain or
CRI format, rotated) and sends every line to the pod's journal; `pmctl logs`
reads them back byte for byte, with --tail, --since, --timestamps, --stream
and -f."""

import calendar
import json
import os
import re
import signal
import subprocess
import threading
import time

from conftest import PMCTL, wait_for

SLEEPER = ("/bin/sleep", "infinity")
KiB = 1024
MiB = 1024 * 1024
DROPPED = re.compile(rb"\[podmutator: (\d+) bytes of log dropped\]")
# RFC 3339 as `pmctl logs --timestamps` and the CRI format write it.
RFC3339 = re.compile(rb"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)")


# -- helpers ---------------------------------------------------------------

def logs(pod, app, *args, timeout=60):
    """`pmctl logs APP ARGS...`: the CompletedProcess, output as bytes."""
    return subprocess.run([str(PMCTL), "--socket", str(pod.socket), "logs", *args, app], env=pod.env,
                          capture_output=True, timeout=timeout)


def logs_ok(pod, app, *args):
    r = logs(pod, app, *args)
    assert r.returncode == 0, f"pmctl logs {' '.join(args)} {app} exited {r.returncode}: {r.stderr[-2000:]!r}"
    return r


def wait_logs(pod, app, stdout, stderr=b"", *args, timeout=15):
    """Waits until `pmctl logs` shows exactly this output (the log daemon
    writes behind the app); returns the last answer."""
    last = []

    def done():
        r = logs_ok(pod, app, *args)
        last[:] = [r]
        return r.stdout == stdout and r.stderr == stderr

    try:
        wait_for(done, timeout=timeout, interval=0.1, what=f"the logs of {app}")
    except AssertionError:
        r = last[0] if last else None
        raise AssertionError(f"logs of {app} never became {stdout[:200]!r} / {stderr[:200]!r}; last seen "
                             f"{(r.stdout[:300], r.stderr[:300]) if r else None}") from None
    return last[0]


def run_spec(pod, tmp_path, spec):
    """Injects and starts an app from a JSON spec; returns its id."""
    f = tmp_path / f"{spec['name']}.json"
    f.write_text(json.dumps(spec))
    return pod.pmctl("inject", "--start", "-f", str(f)).stdout.strip()


def log_file(pod, name, ns="default", suffix=""):
    return pod.path(f"/var/log/{ns}/{name}.log{suffix}")


def file_bytes(path):
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def rfc3339_ns(text):
    """Nanoseconds since the epoch of an RFC 3339 time (bytes or str)."""
    if isinstance(text, str):
        text = text.encode()
    m = RFC3339.fullmatch(text)
    assert m, f"not an RFC 3339 time: {text!r}"
    y, mo, d, h, mi, s = (int(x) for x in m.groups()[:6])
    frac = (m.group(7) or b"").ljust(9, b"0")
    ns = calendar.timegm((y, mo, d, h, mi, s)) * 10**9 + int(frac)
    zone = m.group(8)
    if zone != b"Z":
        sign = 1 if zone[:1] == b"+" else -1
        ns -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60) * 10**9
    return ns


def rfc3339(ns):
    """ns since the epoch as RFC 3339 with nanoseconds, UTC."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + f".{ns % 10**9:09d}Z"


def stamped(data):
    """Lines of `logs --timestamps` output: [(ns, rest of the line)]."""
    out = []
    for line in data.splitlines(keepends=True):
        stamp, sep, rest = line.partition(b" ")
        assert sep, f"no timestamp and space in {line[:200]!r}"
        out.append((rfc3339_ns(stamp), rest))
    return out


def touch(pod, path):
    pod.path(path).touch()


class Follower:
    """`pmctl logs -f ...` with both its streams read by threads."""

    def __init__(self, pod, app, *args, read_stdout=True):
        self.proc = subprocess.Popen([str(PMCTL), "--socket", str(pod.socket), "logs", "-f", *args, app],
                                     env=pod.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.out = bytearray()
        self.err = bytearray()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._pump, args=(self.proc.stderr, self.err), daemon=True)]
        if read_stdout:
            self.read_stdout()
        self.threads[0].start()

    def read_stdout(self):
        t = threading.Thread(target=self._pump, args=(self.proc.stdout, self.out), daemon=True)
        self.threads.append(t)
        t.start()

    def _pump(self, pipe, buf):
        while True:
            chunk = os.read(pipe.fileno(), 1 << 16)
            if not chunk:
                return
            with self.lock:
                buf += chunk

    def snapshot(self):
        with self.lock:
            return bytes(self.out), bytes(self.err)

    def wait_out(self, needle, timeout=10):
        try:
            return wait_for(lambda: needle in self.snapshot()[0], timeout=timeout, what="output")
        except AssertionError:
            out, err = self.snapshot()
            raise AssertionError(f"no {needle[:60]!r} from logs -f within {timeout}s; it printed {len(out)} "
                                 f"bytes to stdout, ending {out[-150:]!r}; stderr {err[-300:]!r}; "
                                 f"exit {self.proc.poll()}") from None

    def wait_exit(self, timeout=15):
        rc = self.proc.wait(timeout=timeout)
        for t in self.threads:
            t.join(timeout=10)
        return rc

    def interrupt(self, sig=signal.SIGINT):
        """Ends it by its PID; returns its exit code."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
        return self.wait_exit()

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


def unit_pid(pod, unit):
    """The main PID of a unit of the pod, as the node sees it (through
    NSpid; never by process name)."""
    inner = int(pod.nsenter("systemctl", "show", "-p", "MainPID", "--value", unit).stdout.strip())
    if inner <= 0:
        return None
    pid_ns = os.readlink(f"/proc/{pod.leader}/ns/pid")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry}/ns/pid") != pid_ns:
                continue
            with open(f"/proc/{entry}/status") as f:
                for line in f:
                    if line.startswith("NSpid:") and int(line.split()[-1]) == inner:
                        return int(entry)
        except (OSError, ValueError):
            continue
    return None


def agent_answers(pod):
    return pod.pmctl("info", check=False, timeout=10).returncode == 0


def kill_agent(pod):
    old = pod.agent_pid()
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: agent_answers(pod) and pod.agent_pid() != old, timeout=15, what="agent restarted")


MIXED = "echo out1; echo err1 >&2; echo out2; echo err2 >&2; echo out3"


# -- streams, tail, timestamps, since ---------------------------------------

def test_logs_show_stdout_on_stdout_and_stderr_on_stderr(pod):
    pod.run("mixed", "/bin/sh", "-c", MIXED)
    pod.wait_state("mixed", "exited")
    wait_logs(pod, "mixed", b"out1\nout2\nout3\n", b"err1\nerr2\n")


def test_stream_option_selects_one_stream(pod):
    pod.run("mixed", "/bin/sh", "-c", MIXED)
    pod.wait_state("mixed", "exited")
    wait_logs(pod, "mixed", b"out1\nout2\nout3\n", b"err1\nerr2\n")
    r = logs_ok(pod, "mixed", "--stream", "stdout")
    assert (r.stdout, r.stderr) == (b"out1\nout2\nout3\n", b"")
    r = logs_ok(pod, "mixed", "--stream", "stderr")
    assert (r.stdout, r.stderr) == (b"", b"err1\nerr2\n")


def test_tail_gives_the_last_lines(pod):
    pod.run("count", "/bin/sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do echo line$i; done")
    pod.wait_state("count", "exited")
    wait_logs(pod, "count", b"".join(b"line%d\n" % i for i in range(1, 11)))
    assert logs_ok(pod, "count", "--tail", "2").stdout == b"line9\nline10\n"
    assert logs_ok(pod, "count", "--tail", "1").stdout == b"line10\n"
    assert logs_ok(pod, "count", "--tail", "100").stdout.count(b"\n") == 10
    # The last two lines of both streams together, each on its own stream
    # (the sleeps put them in a known order).
    pod.run("both", "/bin/sh", "-c", "echo a; echo b >&2; sleep 0.3; echo c >&2; sleep 0.3; echo d")
    pod.wait_state("both", "exited")
    wait_logs(pod, "both", b"a\nd\n", b"b\nc\n")
    r = logs_ok(pod, "both", "--tail", "2")
    assert (r.stdout, r.stderr) == (b"d\n", b"c\n")


def test_tail_counts_the_lines_of_the_chosen_stream(pod):
    pod.run("both", "/bin/sh", "-c", "echo a; echo b >&2; sleep 0.3; echo c >&2; sleep 0.3; echo d; sleep 0.3; echo e")
    pod.wait_state("both", "exited")
    wait_logs(pod, "both", b"a\nd\ne\n", b"b\nc\n")
    assert logs_ok(pod, "both", "--stream", "stderr", "--tail", "1").stderr == b"c\n"
    assert logs_ok(pod, "both", "--stream", "stdout", "--tail", "2").stdout == b"d\ne\n"


def test_many_apps_logging_at_once_keep_their_lines_apart(pod):
    n_apps, n_lines = 12, 2000
    for k in range(n_apps):
        pod.run(f"w{k}", "/usr/bin/python3", "-c",
                "import sys, time\n"
                "while True:\n"
                "    try: open('/tmp/go-many'); break\n"
                "    except OSError: time.sleep(0.05)\n"
                f"for i in range({n_lines}):\n"
                f"    sys.stdout.write('w{k} %d\\n' % i); sys.stderr.write('w{k} err %d\\n' % i)\n")
    touch(pod, "/tmp/go-many")
    for k in range(n_apps):
        pod.wait_state(f"w{k}", "exited", timeout=60)
    for k in range(n_apps):
        want_out = "".join(f"w{k} {i}\n" for i in range(n_lines)).encode()
        want_err = "".join(f"w{k} err {i}\n" for i in range(n_lines)).encode()
        wait_logs(pod, f"w{k}", want_out, want_err, timeout=30)
        data = file_bytes(log_file(pod, f"w{k}"))
        assert sorted(data.splitlines()) == sorted(want_out.splitlines() + want_err.splitlines())


def test_timestamps_prefix_each_line_with_rfc3339_in_order(pod):
    t0 = time.time_ns()
    pod.run("ts", "/bin/sh", "-c", "echo one; sleep 0.2; echo two >&2; sleep 0.2; echo three")
    pod.wait_state("ts", "exited")
    wait_logs(pod, "ts", b"one\nthree\n", b"two\n")
    r = logs_ok(pod, "ts", "--timestamps")
    out, err = stamped(r.stdout), stamped(r.stderr)
    assert [rest for _, rest in out] == [b"one\n", b"three\n"]
    assert [rest for _, rest in err] == [b"two\n"]
    t1 = time.time_ns()
    times = [out[0][0], err[0][0], out[1][0]]
    assert times == sorted(times), times
    assert times[2] - times[0] >= 300_000_000, "the lines were 0.4 s apart"  # not the read time
    assert all(t0 - 2 * 10**9 <= t <= t1 + 2 * 10**9 for t in times), (t0, times, t1)


def test_timestamps_prefix_a_long_line_once(pod):
    long_line = bytes(97 + i % 26 for i in range(300 * KiB))
    pod.run("longts", "/usr/bin/python3", "-c",
            f"import sys; o = sys.stdout.buffer; o.write(bytes(97 + i % 26 for i in range({300 * KiB})) + "
            "b'\\n'); o.write(b'short\\n'); o.flush()")
    pod.wait_state("longts", "exited")
    wait_logs(pod, "longts", long_line + b"\nshort\n")
    lines = stamped(logs_ok(pod, "longts", "--timestamps").stdout)
    assert [rest for _, rest in lines] == [long_line + b"\n", b"short\n"], [len(rest) for _, rest in lines]


def test_since_excludes_earlier_lines_in_each_form(pod):
    pod.run("late", "/bin/sh", "-c", "echo early1; echo early2 >&2; sleep 4; echo late1; echo late2 >&2; "
            "exec sleep infinity")
    wait_logs(pod, "late", b"early1\nlate1\n", b"early2\nlate2\n", timeout=20)
    stamps = stamped(logs_ok(pod, "late", "--timestamps").stdout) + \
        stamped(logs_ok(pod, "late", "--timestamps").stderr)
    by_line = {rest: t for t, rest in stamps}
    last_early = max(by_line[b"early1\n"], by_line[b"early2\n"])
    first_late = min(by_line[b"late1\n"], by_line[b"late2\n"])
    assert first_late - last_early >= 3 * 10**9

    # RFC 3339, between the two groups.
    mid = (last_early + first_late) // 2
    r = logs_ok(pod, "late", "--since", rfc3339(mid))
    assert (r.stdout, r.stderr) == (b"late1\n", b"late2\n")
    # Unix time in seconds: the next full second after the early lines.
    r = logs_ok(pod, "late", "--since", str(last_early // 10**9 + 1))
    assert (r.stdout, r.stderr) == (b"late1\n", b"late2\n")
    # A duration: back to a little (1-2 s) before the late lines.
    ago = (time.time_ns() - first_late) // 10**9 + 2
    r = logs_ok(pod, "late", "--since", f"{ago}s")
    assert (r.stdout, r.stderr) == (b"late1\n", b"late2\n"), f"--since {ago}s"
    # Long ago: everything; in the future: nothing.
    r = logs_ok(pod, "late", "--since", "2h")
    assert (r.stdout, r.stderr) == (b"early1\nlate1\n", b"early2\nlate2\n")
    r = logs_ok(pod, "late", "--since", rfc3339(time.time_ns() + 3600 * 10**9))
    assert (r.stdout, r.stderr) == (b"", b"")


def test_since_and_tail_together_give_the_last_lines_after_since(pod):
    pod.run("st", "/bin/sh", "-c", "echo old1; echo old2; sleep 2; echo new1; sleep 0.2; echo new2; sleep 0.2; "
            "echo new3; exec sleep infinity")
    wait_logs(pod, "st", b"old1\nold2\nnew1\nnew2\nnew3\n")
    stamps = dict((rest, t) for t, rest in stamped(logs_ok(pod, "st", "--timestamps").stdout))
    since = rfc3339((stamps[b"old2\n"] + stamps[b"new1\n"]) // 2)
    assert logs_ok(pod, "st", "--since", since).stdout == b"new1\nnew2\nnew3\n"
    assert logs_ok(pod, "st", "--since", since, "--tail", "2").stdout == b"new2\nnew3\n"
    assert logs_ok(pod, "st", "--since", since, "--tail", "1").stdout == b"new3\n"
    assert logs_ok(pod, "st", "--since", since, "--tail", "10").stdout == b"new1\nnew2\nnew3\n"


# -- follow ------------------------------------------------------------------

def test_follow_sees_lines_written_after_it_started_and_ends_on_sigint(pod):
    pod.run("talk", "/bin/sh", "-c", "echo first; while [ ! -e /tmp/go-talk ]; do sleep 0.05; done; "
            "echo second; echo second-err >&2; exec sleep infinity")
    f = Follower(pod, "talk")
    try:
        f.wait_out(b"first\n")
        touch(pod, "/tmp/go-talk")
        f.wait_out(b"second\n")
        wait_for(lambda: b"second-err\n" in f.snapshot()[1], timeout=10, what="the stderr line on stderr")
        out, err = f.snapshot()
        assert out == b"first\nsecond\n" and err == b"second-err\n", (out, err)
        assert f.proc.poll() is None, "logs -f ended on its own"
        rc = f.interrupt(signal.SIGINT)
        assert rc in (0, 130), f"logs -f exited {rc} on SIGINT: {f.snapshot()[1]!r}"
    finally:
        f.close()


def test_follow_with_tail_0_shows_only_new_lines(pod):
    pod.run("fresh", "/bin/sh", "-c", "echo old1; echo old2 >&2; while [ ! -e /tmp/go-fresh ]; do sleep 0.05; done; "
            "echo new1; echo new2 >&2; exec sleep infinity")
    wait_logs(pod, "fresh", b"old1\n", b"old2\n")
    f = Follower(pod, "fresh", "--tail", "0")
    try:
        time.sleep(0.5)  # nothing may come: the old lines are not shown
        assert f.snapshot() == (b"", b""), f.snapshot()
        touch(pod, "/tmp/go-fresh")
        f.wait_out(b"new1\n")
        wait_for(lambda: f.snapshot()[1] == b"new2\n", timeout=10, what="new2 on stderr")
        assert f.snapshot() == (b"new1\n", b"new2\n")
    finally:
        f.interrupt()
        f.close()


def test_follow_ends_with_exit_0_when_the_app_is_removed(pod):
    pod.run("gone", "/bin/sh", "-c", "echo hello; exec sleep infinity")
    f = Follower(pod, "gone")
    try:
        f.wait_out(b"hello\n")
        pod.pmctl("rm", "-f", "gone")
        rc = f.wait_exit(timeout=15)
        assert rc == 0, f"logs -f exited {rc}: {f.snapshot()[1]!r}"
        assert f.snapshot()[0] == b"hello\n"
    finally:
        f.close()


def test_follow_ends_on_sigterm_too(pod):
    pod.run("calm", *SLEEPER)
    f = Follower(pod, "calm")
    try:
        time.sleep(0.3)  # nothing to wait for: the app prints nothing
        assert f.proc.poll() is None
        rc = f.interrupt(signal.SIGTERM)
        assert rc in (0, 143), f"logs -f exited {rc} on SIGTERM: {f.snapshot()[1]!r}"
    finally:
        f.close()


def test_a_follower_that_falls_behind_loses_nothing_uncounted_and_the_agent_keeps_serving(pod, tmp_path):
    # Small files, so that what the follower has not read is rotated away.
    lines = 20_000  # 100-byte lines: 2 MB, well past what the pipes and sockets hold
    run_spec(pod, tmp_path, {
        "name": "flood", "logging": {"max_size": 256 * KiB, "max_files": 1},
        "argv": ["/usr/bin/python3", "-c",
                 "import os, sys, time\n"
                 "while not os.path.exists('/tmp/go-flood'): time.sleep(0.05)\n"
                 "w = sys.stdout.buffer.write\n"
                 f"for i in range({lines}): w(b'%09d ' % i + b'x' * 89 + b'\\n')\n"
                 "sys.stdout.flush()\n"
                 "time.sleep(100000)\n"]})
    f = Follower(pod, "flood", read_stdout=False)  # its stdout is not read for now
    try:
        time.sleep(0.5)
        touch(pod, "/tmp/go-flood")
        # While it floods, the agent answers as usual.
        for _ in range(5):
            t0 = time.monotonic()
            assert agent_answers(pod)
            assert time.monotonic() - t0 < 3.0
            time.sleep(0.2)
        last = b"%09d " % (lines - 1) + b"x" * 89 + b"\n"
        wait_for(lambda: (file_bytes(log_file(pod, "flood")) or b"")[-100:] == last, timeout=60,
                 what="the flood to end in the log file")
        # The reader catches up only once the flood is over and the journal
        # holds all of it: no newer line comes to carry a marker along.
        unit = pod.status("flood")["unit"]
        wait_for(lambda: journal_count(pod, unit) >= lines, timeout=60, interval=0.5,
                 what="the flood in the journal")
        f.read_stdout()
        f.wait_out(last, timeout=30)
        out, err = f.snapshot()
        dropped = [int(n) for n in DROPPED.findall(err)]
        assert not DROPPED.search(out), "the marker belongs on stderr"
        assert all(n > 0 for n in dropped), err[:500]
        # Either the follower got every line late (kept for it), or what it
        # lost is counted by the markers, to the byte.
        assert len(out) + sum(dropped) == lines * 100, (len(out), dropped, err[:500])
        assert DROPPED.sub(b"", err).strip() == b"", f"stderr besides the markers: {err[:500]!r}"
        for line in out.splitlines(keepends=True):
            assert len(line) == 100 and line.endswith(b"x\n"), f"a cut line: {line[:120]!r}"
        assert agent_answers(pod)
    finally:
        f.close()


# -- agent kill, restarts ------------------------------------------------------

def test_logs_survive_an_agent_kill9_and_lines_written_while_it_is_down(pod):
    pod.run("steady", "/bin/sh", "-c",
            "echo before; while [ ! -e /tmp/go-1 ]; do sleep 0.05; done; echo during; echo during-err >&2; "
            "while [ ! -e /tmp/go-2 ]; do sleep 0.05; done; echo after; exec sleep infinity")
    wait_logs(pod, "steady", b"before\n")
    agent = pod.agent_pid()
    os.kill(agent, signal.SIGSTOP)
    try:
        touch(pod, "/tmp/go-1")
        # No agent in the path: the line reaches the file while it is frozen.
        wait_for(lambda: b"during\n" in (file_bytes(log_file(pod, "steady")) or b""), timeout=10,
                 what="the line written while the agent is stopped in the log file")
    finally:
        os.kill(agent, signal.SIGKILL)
    wait_for(lambda: agent_answers(pod) and pod.agent_pid() != agent, timeout=15, what="agent restarted")
    wait_logs(pod, "steady", b"before\nduring\n", b"during-err\n")
    touch(pod, "/tmp/go-2")
    wait_logs(pod, "steady", b"before\nduring\nafter\n", b"during-err\n")
    kill_agent(pod)
    wait_logs(pod, "steady", b"before\nduring\nafter\n", b"during-err\n")


def test_logs_survive_a_log_daemon_kill9_and_lines_written_while_it_is_down(pod):
    pod.run("keep", "/bin/sh", "-c",
            "echo before; while [ ! -e /tmp/go-k1 ]; do sleep 0.05; done; echo during; echo during-err >&2; "
            ": >/tmp/k1-done; while [ ! -e /tmp/go-k2 ]; do sleep 0.05; done; echo after; exec sleep infinity")
    wait_logs(pod, "keep", b"before\n")
    logd = unit_pid(pod, "pm-logd.service")
    assert logd, "pm-logd.service has no main PID"
    os.kill(logd, signal.SIGSTOP)
    try:
        touch(pod, "/tmp/go-k1")
        # The app wrote its lines (into the daemon's sockets) while it was frozen.
        wait_for(lambda: pod.path("/tmp/k1-done").exists(), timeout=10, what="the app's lines while logd is down")
    finally:
        os.kill(logd, signal.SIGKILL)
    wait_for(lambda: (p := unit_pid(pod, "pm-logd.service")) and p != logd, timeout=15, interval=0.1,
             what="pm-logd restarted")
    wait_logs(pod, "keep", b"before\nduring\n", b"during-err\n")
    touch(pod, "/tmp/go-k2")  # and the stream goes on after the restart
    wait_logs(pod, "keep", b"before\nduring\nafter\n", b"during-err\n")
    data = file_bytes(log_file(pod, "keep"))
    assert data is not None and sorted(data.splitlines()) == [b"after", b"before", b"during", b"during-err"], data
    assert pod.status("keep")["state"] == "running"


def test_logs_of_every_run_of_a_restart_always_app_are_kept(pod):
    pod.run("loop", "/bin/sh", "-c", 'echo "run $$"; echo "err $$" >&2; sleep 0.2', opts=("--restart", "always"))
    wait_for(lambda: pod.status("loop")["restart_count"] >= 3, timeout=20, what="three restarts")
    pod.pmctl("stop", "loop")
    # One run fewer when the stop came while a restart was only scheduled.
    runs = pod.status("loop")["restart_count"] + 1

    seen = []

    def enough():
        r = logs_ok(pod, "loop")
        seen[:] = [r]
        n = len(r.stdout.splitlines())
        return n >= max(3, runs - 1) and len(r.stderr.splitlines()) == n and r

    try:
        r = wait_for(enough, timeout=15, what="the runs")
    except AssertionError:
        raise AssertionError(f"not {runs} runs in the logs; last seen stdout {seen[0].stdout!r} stderr "
                             f"{seen[0].stderr!r}; the file holds {file_bytes(log_file(pod, 'loop'))!r}") from None
    assert len(r.stdout.splitlines()) in (runs - 1, runs), (runs, r.stdout)
    out = r.stdout.splitlines()
    assert all(re.fullmatch(rb"run \d+", x) for x in out), out
    assert len(set(out)) == len(out) >= 3, out  # a new process each run
    assert [x.replace(b"err", b"run") for x in r.stderr.splitlines()] == out


def test_logs_of_a_stopped_and_started_app_hold_both_runs(pod):
    pod.run("twice", "/bin/sh", "-c", 'echo "run $$"')
    first = pod.wait_state("twice", "exited")
    wait_for(lambda: logs_ok(pod, "twice").stdout.count(b"\n") == 1, timeout=15, what="the first run's line")
    pod.pmctl("start", "twice")
    wait_for(lambda: (s := pod.status("twice"))["state"] == "exited" and s["started_at"] > first["started_at"],
             timeout=15, what="the second run to end")
    r = wait_for(lambda: (r := logs_ok(pod, "twice")).stdout.count(b"\n") == 2 and r, timeout=15,
                 what="the second run's line")
    a, b = r.stdout.splitlines()
    assert a.startswith(b"run ") and b.startswith(b"run ") and a != b
    assert file_bytes(log_file(pod, "twice")) == r.stdout


# -- the files -----------------------------------------------------------------

def test_plain_log_file_holds_the_apps_bytes_in_its_namespace_dir(pod):
    pod.run("plain", "/bin/sh", "-c", "printf 'a\\nb b\\n\\tc'")
    other = pod.run("other", "/bin/sh", "-c", "echo in-team; echo err-team >&2", opts=("--ns", "team"))
    pod.wait_state("plain", "exited")
    wait_for(lambda: file_bytes(log_file(pod, "plain")) == b"a\nb b\n\tc", timeout=15,
             what=f"/var/log/default/plain.log; it holds {file_bytes(log_file(pod, 'plain'))!r}")
    wait_for(lambda: sorted((file_bytes(log_file(pod, "other", "team")) or b"").splitlines())
             == [b"err-team", b"in-team"], timeout=15,
             what=f"/var/log/team/other.log; it holds {file_bytes(log_file(pod, 'other', 'team'))!r}")
    assert not log_file(pod, "other").exists()
    wait_logs(pod, other, b"in-team\n", b"err-team\n")  # by id: unambiguous in any namespace
    r = logs_ok(pod, "other", "--ns", "team")
    assert (r.stdout, r.stderr) == (b"in-team\n", b"err-team\n")
    assert logs(pod, "other").returncode == 4  # not in "default"


def parse_cri(data):
    """CRI lines: [(ns, stream, flag, content)]."""
    out = []
    assert data.endswith(b"\n"), data[-200:]
    for line in data[:-1].split(b"\n"):
        parts = line.split(b" ", 3)
        assert len(parts) == 4, f"not a CRI line: {line[:200]!r}"
        stamp, stream, flag, content = parts
        assert stream in (b"stdout", b"stderr") and flag in (b"P", b"F"), line[:200]
        out.append((rfc3339_ns(stamp), stream.decode(), flag.decode(), content))
    return out


def test_cri_format_file_has_well_formed_lines_and_splits_long_ones_into_p_then_f(pod, tmp_path):
    long_line = bytes(97 + i % 26 for i in range(300 * KiB))
    script = ("import sys, time\n"
              "o, e = sys.stdout.buffer, sys.stderr.buffer\n"
              "o.write(b'out1\\n'); o.flush(); time.sleep(0.1)\n"
              "e.write(b'err1 with spaces\\n'); e.flush(); time.sleep(0.1)\n"
              f"o.write(bytes(97 + i % 26 for i in range({300 * KiB})) + b'\\n'); o.flush(); time.sleep(0.1)\n"
              "o.write(b'out2\\n'); o.flush()\n")
    t0 = time.time_ns()
    run_spec(pod, tmp_path, {"name": "cri", "argv": ["/usr/bin/python3", "-c", script],
                             "logging": {"format": "cri"}})
    pod.wait_state("cri", "exited")
    path = log_file(pod, "cri")
    wait_for(lambda: (file_bytes(path) or b"").endswith(b" stdout F out2\n"), timeout=15,
             what=f"the last line in the CRI file; it ends {(file_bytes(path) or b'')[-200:]!r}")
    entries = parse_cri(path.read_bytes())
    times = [e[0] for e in entries]
    assert times == sorted(times), "CRI times out of order"
    assert all(t0 - 2 * 10**9 <= t <= time.time_ns() + 2 * 10**9 for t in times)
    # Whole lines per stream: P pieces, then one F.
    lines = {"stdout": [], "stderr": []}
    pending = {"stdout": b"", "stderr": b""}
    pieces = 0
    for _, stream, flag, content in entries:
        pending[stream] += content
        if flag == "F":
            lines[stream].append(pending[stream])
            pending[stream] = b""
        else:
            pieces += 1
    assert pending == {"stdout": b"", "stderr": b""}, "a P without its F"
    assert lines["stderr"] == [b"err1 with spaces"]
    assert lines["stdout"] == [b"out1", long_line, b"out2"], [len(x) for x in lines["stdout"]]
    assert pieces >= 1, "a 300 KiB line was not split"
    # pmctl logs gives the app's bytes back, not the CRI lines.
    r = logs_ok(pod, "cri")
    assert r.stdout == b"out1\n" + long_line + b"\nout2\n"
    assert r.stderr == b"err1 with spaces\n"


def test_rotation_caps_the_file_and_keeps_max_files(pod, tmp_path):
    max_size, n = 256 * KiB, 3 * MiB // 100
    script = ("import sys\nw = sys.stdout.buffer.write\n"
              f"for i in range({n}): w(b'%09d ' % i + b'y' * 89 + b'\\n')\n"
              "w(b'END\\n')\n")
    run_spec(pod, tmp_path, {"name": "rot", "argv": ["/usr/bin/python3", "-c", script],
                             "logging": {"max_size": max_size, "max_files": 2}})
    pod.wait_state("rot", "exited", timeout=30)
    wait_for(lambda: (file_bytes(log_file(pod, "rot")) or b"").endswith(b"END\n"), timeout=30,
             what="the last line in rot.log")
    cur, one, two = (log_file(pod, "rot", suffix=s) for s in ("", ".1", ".2"))
    assert one.exists() and two.exists(), sorted(p.name for p in cur.parent.iterdir())
    assert not log_file(pod, "rot", suffix=".3").exists(), sorted(p.name for p in cur.parent.iterdir())
    assert sorted(p.name for p in cur.parent.glob("rot.log*")) == ["rot.log", "rot.log.1", "rot.log.2"]
    sizes = [p.stat().st_size for p in (two, one, cur)]
    assert all(s <= max_size + 100 for s in sizes), sizes
    assert all(s >= max_size // 2 for s in sizes[:2]), f"rotated files far below max_size: {sizes}"
    # Nothing lost or doubled across the rotations: .2, .1 and the current
    # file are consecutive lines of the app's output.
    kept = (two.read_bytes() + one.read_bytes() + cur.read_bytes())
    assert kept.endswith(b"END\n")
    body = kept[:-4]
    first = body.index(b"\n") + 1  # .log.2 may begin inside a line
    numbers = [int(line[:9]) for line in body[first:].splitlines()]
    assert numbers == list(range(numbers[0], n)), "lines lost or repeated across rotations"


def journal_count(pod, unit):
    r = pod.nsenter("journalctl", "-u", unit, "-o", "cat", "--no-pager", check=False)
    return r.stdout.count("\n")


def test_logs_of_an_app_writing_many_lines_fast_are_complete(pod):
    # 50000 lines at once: more than journald lets one sender log in 30 s by
    # default (RateLimitBurst=10000, scaled up with free space).
    n = 50_000
    pod.run("many", "/usr/bin/python3", "-c", f"import sys\nfor i in range({n}): sys.stdout.write('%06d\\n' % i)\n")
    st = pod.wait_state("many", "exited", timeout=30)
    want = b"".join(b"%06d\n" % i for i in range(n))
    wait_for(lambda: file_bytes(log_file(pod, "many")) == want, timeout=30, what="many.log complete")
    try:
        wait_for(lambda: logs_ok(pod, "many", "--tail", "1").stdout == b"%06d\n" % (n - 1), timeout=20,
                 interval=0.5, what="the last line")
    except AssertionError:
        r = pod.nsenter("journalctl", "--no-pager", "-o", "cat", "-u", "systemd-journald.service", check=False)
        notes = [x for x in pod.nsenter("journalctl", "--no-pager", "-o", "cat", check=False).stdout.splitlines()
                 if "uppressed" in x]
        raise AssertionError(f"pmctl logs never showed line {n - 1}: the journal holds "
                             f"{journal_count(pod, st['unit'])} lines of the app; journald says {notes[-3:]} "
                             f"{r.stdout[-300:]}") from None
    r = logs_ok(pod, "many")
    got = r.stdout.count(b"\n")
    assert r.stdout == want, f"{got} of {n} lines"


def test_rm_deletes_the_log_files(pod, tmp_path):
    script = "import sys\nfor i in range(3000): sys.stdout.write('z' * 99 + '\\n')\n"
    run_spec(pod, tmp_path, {"name": "del", "argv": ["/usr/bin/python3", "-c", script],
                             "logging": {"max_size": 64 * KiB, "max_files": 2}})
    pod.wait_state("del", "exited")
    wait_for(lambda: log_file(pod, "del", suffix=".1").exists() and log_file(pod, "del").exists(), timeout=15,
             what="del.log and del.log.1")
    pod.pmctl("rm", "del")
    wait_for(lambda: not list(log_file(pod, "del").parent.glob("del.log*")), timeout=5,
             what=f"del's files gone: {sorted(p.name for p in log_file(pod, 'del').parent.glob('del.log*'))}")
    r = logs(pod, "del")
    assert r.returncode == 4 and b"no app" in r.stderr, (r.returncode, r.stderr)
    # A new app of the same name starts with an empty log.
    pod.run("del", "/bin/sh", "-c", "echo new")
    pod.wait_state("del", "exited")
    wait_logs(pod, "del", b"new\n")


# -- bytes intact ----------------------------------------------------------------

def test_big_line_binary_bytes_and_last_line_without_newline_come_through_intact(pod):
    # 1 MiB line; every byte value 0..255 (newline and NUL included) four
    # times; a last line with no newline. stderr gets the byte values too.
    script = ("import sys\n"
              "o, e = sys.stdout.buffer, sys.stderr.buffer\n"
              "big = bytes(33 + i % 90 for i in range(1 << 20))\n"
              "o.write(b'start\\n' + big + b'\\n'); o.flush()\n"
              "o.write(bytes(range(256)) * 4 + b'\\n'); o.flush()\n"
              "e.write(bytes(range(255, -1, -1)) + b'\\n'); e.flush()\n"
              "o.write(b'no newline at the end'); o.flush()\n")
    pod.run("bytes", "/usr/bin/python3", "-c", script)
    pod.wait_state("bytes", "exited")
    big = bytes(33 + i % 90 for i in range(1 << 20))
    want_out = b"start\n" + big + b"\n" + bytes(range(256)) * 4 + b"\n" + b"no newline at the end"
    want_err = bytes(range(255, -1, -1)) + b"\n"
    wait_logs(pod, "bytes", want_out, want_err, timeout=20)
    assert logs_ok(pod, "bytes", "--stream", "stdout").stdout == want_out
    assert logs_ok(pod, "bytes", "--tail", "1", "--stream", "stdout").stdout == b"no newline at the end"
    # The plain file: the same bytes (the two streams' lines, interleaved).
    data = file_bytes(log_file(pod, "bytes"))
    assert data is not None and len(data) == len(want_out) + len(want_err)
    assert data.startswith(b"start\n" + big + b"\n") and data.endswith(b"no newline at the end")


# -- errors ------------------------------------------------------------------------

def test_errors_unknown_app_bad_since_negative_tail_unknown_stream(pod):
    r = logs(pod, "nosuch")
    assert r.returncode == 4 and b"no app" in r.stderr, (r.returncode, r.stderr)
    r = logs(pod, "nosuch", "-f")
    assert r.returncode == 4 and b"no app" in r.stderr, (r.returncode, r.stderr)
    pod.run("there", "/bin/sh", "-c", "echo hi")
    pod.wait_state("there", "exited")
    wait_logs(pod, "there", b"hi\n")
    for args, word in ((("--since", "yesterday"), b"since"), (("--since", "10x"), b"since"),
                       (("--since", "2026-13-45T99:00:00Z"), b"since"), (("--since", ""), b"since"),
                       (("--tail", "-3"), b"tail"), (("--tail", "many"), b"tail"),
                       (("--stream", "stdin"), b"stream"), (("--stream", "both"), b"stream")):
        r = logs(pod, "there", *args)
        assert r.returncode != 0, f"logs {args} succeeded: {r.stdout!r}"
        assert word in r.stderr.lower(), f"logs {args}: unclear error {r.stderr!r}"
        assert r.stdout == b"", f"logs {args} printed {r.stdout!r}"
    # Nothing broke: the good form still works.
    wait_logs(pod, "there", b"hi\n")


# -- the journal -------------------------------------------------------------------

def test_the_pods_journal_holds_the_apps_lines_with_its_fields(pod):
    app_id = pod.run("jour", "/bin/sh", "-c", "echo journal-out-line; echo journal-err-line >&2")
    st = pod.wait_state("jour", "exited")
    unit = st["unit"]
    assert unit == f"pm-app@{app_id}.service" or unit.startswith("pm-app@"), unit

    def cat():
        r = pod.nsenter("journalctl", "-u", unit, "-o", "cat", "--no-pager", check=False)
        return "journal-out-line" in r.stdout and "journal-err-line" in r.stdout and r.stdout

    wait_for(cat, timeout=15, interval=0.2, what=f"the app's lines in journalctl -u {unit}")
    r = pod.nsenter("journalctl", "-u", unit, "-o", "json", "--no-pager")
    entries = [json.loads(x) for x in r.stdout.splitlines() if x.strip()]
    mine = {e["MESSAGE"]: e for e in entries if e.get("MESSAGE") in ("journal-out-line", "journal-err-line")}
    assert set(mine) == {"journal-out-line", "journal-err-line"}, entries[-5:]
    for msg, stream in (("journal-out-line", "stdout"), ("journal-err-line", "stderr")):
        e = mine[msg]
        assert e["PM_STREAM"] == stream, e
        assert e["PM_APP_ID"] == st["id"], e
        assert e["SYSLOG_IDENTIFIER"] == "jour", e
        assert e["OBJECT_SYSTEMD_UNIT"] == unit, e
