"""Exec against a real pod: ExecSync and streaming exec into a running app,
terminal sessions (driven through tmux), cleanup when the client goes away,
flow control, output caps, run-once (`run --rm`) and function pipelines."""

import base64
import hashlib
import json
import os
import re
import secrets
import shlex
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from conftest import PMCTL, REPO, wait_for

SLEEPER = ("/bin/sleep", "infinity")
PIPELINE = REPO / "examples" / "pipeline"
MiB = 1024 * 1024


# -- helpers ---------------------------------------------------------------

def start_app(pod, name="app", opts=()):
    pod.run(name, *SLEEPER, opts=opts)
    assert pod.status(name)["state"] == "running"
    return name


def exec_sync(pod, app, *cmd, opts=(), input=None, timeout=60):
    """`pmctl --json exec --sync`: (pmctl's exit code, the decoded answer or
    None, pmctl's stderr)."""
    r = pod.pmctl("--json", "exec", "--sync", *opts, app, "--", *cmd, check=False, input=input,
                  timeout=timeout)
    stderr = r.stderr if isinstance(r.stderr, str) else r.stderr.decode(errors="replace")
    answer = None
    if r.stdout:
        answer = json.loads(r.stdout)
        answer["stdout"] = base64.b64decode(answer.get("stdout", ""))
        answer["stderr"] = base64.b64decode(answer.get("stderr", ""))
    return r.returncode, answer, stderr


def pod_processes(pod, pattern):
    """Command lines of the pod's processes matching pattern (pgrep -f): ''
    when there are none."""
    r = pod.nsenter("pgrep", "-af", pattern, check=False)
    assert r.returncode in (0, 1), r.stderr
    return r.stdout.strip()


def units(pod, pattern):
    """Loaded units matching pattern (any state), as systemctl lists them."""
    return pod.nsenter("systemctl", "list-units", "--all", "--no-legend", pattern).stdout.strip()


def agent_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def agent_rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def pmctl_cmd(pod, *args):
    return [str(PMCTL), "--socket", str(pod.socket), *args]


class Tmux:
    """A private tmux server (its own -L socket), killed by close()."""

    def __init__(self, env):
        self.name = "pm-test-" + secrets.token_hex(4)
        self.env = dict(env, TERM="xterm")
        self.socket = None

    def __call__(self, *args, check=True):
        r = subprocess.run(["tmux", "-L", self.name, "-f", "/dev/null", *args], env=self.env,
                           capture_output=True, text=True, timeout=10)
        if check:
            assert r.returncode == 0, f"tmux {args}: {r.stderr}"
        return r

    def new_session(self, command, x=100, y=30):
        self("new-session", "-d", "-x", str(x), "-y", str(y), command)
        self.socket = self("display-message", "-p", "#{socket_path}").stdout.strip()

    def pane(self):
        r = self("capture-pane", "-p", check=False)
        return r.stdout if r.returncode == 0 else ""

    def type(self, text):
        self("send-keys", "-l", text)
        self("send-keys", "Enter")

    def wait_pane(self, pattern, timeout=10, what=None):
        rx = re.compile(pattern, re.M)
        return wait_for(lambda: rx.search(self.pane()), timeout=timeout,
                        what=what or f"{pattern!r} in the pane; it shows:\n{self.pane()}")

    def close(self):
        self("kill-server", check=False)
        if self.socket:
            try:
                os.unlink(self.socket)
            except FileNotFoundError:
                pass


# -- ExecSync and streaming exec: output, exit codes, errors ----------------

def test_exec_sync_returns_exact_stdout_and_empty_stderr(pod):
    start_app(pod)
    rc, ans, err = exec_sync(pod, "app", "echo", "-n", "hello")
    assert rc == 0, err
    assert ans["stdout"] == b"hello"
    assert ans["stderr"] == b""
    assert ans["exit_code"] == 0 and ans["reason"] == "Completed"
    assert ans["stdout_truncated"] is False and ans["stderr_truncated"] is False


def test_exec_sync_keeps_stdout_and_stderr_apart_and_returns_exit_code(pod):
    start_app(pod)
    rc, ans, err = exec_sync(pod, "app", "/bin/sh", "-c", "echo out; echo err >&2; exit 7")
    assert rc == 7, err
    assert ans["stdout"] == b"out\n"
    assert ans["stderr"] == b"err\n"
    assert ans["exit_code"] == 7 and ans["reason"] == "Error"


def test_streaming_exec_keeps_stdout_and_stderr_apart_and_exits_with_command_code(pod):
    start_app(pod)
    r = pod.pmctl("exec", "app", "--", "/bin/sh", "-c", "echo out; echo err >&2; exit 7", check=False)
    assert r.returncode == 7, r.stderr
    assert r.stdout == "out\n"
    assert r.stderr == "err\n"


def test_exec_timeout_kills_command_and_reports_deadline_exceeded(pod):
    start_app(pod)
    t0 = time.monotonic()
    r = pod.pmctl("exec", "--timeout", "1", "app", "--", "sleep", "4321", check=False, timeout=30)
    elapsed = time.monotonic() - t0
    assert r.returncode == 8, (r.returncode, r.stderr)
    assert "DEADLINE_EXCEEDED" in r.stderr
    assert 0.9 <= elapsed < 10, elapsed
    # The answer comes once the command is gone.
    assert pod_processes(pod, "sleep 4321") == ""
    wait_for(lambda: units(pod, "pm-exec-*") == "", timeout=5, what="the exec unit to go")


def test_exec_sync_timeout_kills_command_that_ignores_sigterm(pod):
    start_app(pod)
    t0 = time.monotonic()
    rc, ans, err = exec_sync(pod, "app", "/bin/sh", "-c", "trap '' TERM; sleep 4322",
                             opts=("--timeout", "1"), timeout=30)
    elapsed = time.monotonic() - t0
    assert rc == 8 and ans is None, (rc, err)
    assert "DEADLINE_EXCEEDED" in err
    assert elapsed < 10, elapsed
    assert pod_processes(pod, "sleep 4322") == ""


def test_exec_runs_with_app_environment_user_and_workdir(pod):
    start_app(pod, opts=("--env", "FOO=from-spec", "--env", "BAR=kept", "--user", "nobody",
                         "--workdir", "/tmp"))
    rc, ans, err = exec_sync(pod, "app", "/bin/sh", "-c", 'echo "$FOO $BAR"; id -u; pwd')
    assert rc == 0, err
    assert ans["stdout"].decode().splitlines() == ["from-spec kept", "65534", "/tmp"]
    # Streaming exec sees the same world.
    r = pod.pmctl("exec", "app", "--", "/bin/sh", "-c", 'echo "$FOO"; id -u; pwd')
    assert r.stdout.splitlines() == ["from-spec", "65534", "/tmp"]


def test_exec_request_env_adds_to_and_overrides_app_env(pod):
    start_app(pod, opts=("--env", "FOO=from-spec", "--env", "BAR=kept"))
    r = pod.pmctl("exec", "-e", "NEW=added", "app", "--", "/bin/sh", "-c", 'echo "$FOO $BAR $NEW"')
    assert r.stdout == "from-spec kept added\n"
    # A key the app has: the request's value wins (streaming and sync).
    r = pod.pmctl("exec", "-e", "FOO=from-request", "app", "--", "/bin/sh", "-c", 'echo "$FOO $BAR"',
                  check=False)
    assert (r.returncode, r.stdout, r.stderr) == (0, "from-request kept\n", "")
    rc, ans, err = exec_sync(pod, "app", "/bin/sh", "-c", 'echo "$FOO $BAR"', opts=("-e", "FOO=from-request"))
    assert rc == 0, err
    assert ans["stdout"] == b"from-request kept\n"


def test_exec_into_stopped_app_fails_precondition(pod):
    start_app(pod)
    pod.pmctl("stop", "app")
    assert pod.status("app")["state"] == "exited"
    r = pod.pmctl("exec", "app", "--", "/bin/true", check=False)
    assert r.returncode == 7 and "FAILED_PRECONDITION" in r.stderr, (r.returncode, r.stderr)
    rc, ans, err = exec_sync(pod, "app", "/bin/true")
    assert rc == 7 and ans is None and "FAILED_PRECONDITION" in err, (rc, err)
    assert units(pod, "pm-exec-*") == ""


def test_exec_into_unknown_app_fails_not_found(pod):
    start_app(pod)
    r = pod.pmctl("exec", "nosuchapp", "--", "/bin/true", check=False)
    assert r.returncode == 4 and "NOT_FOUND" in r.stderr, (r.returncode, r.stderr)
    rc, ans, err = exec_sync(pod, "nosuchapp", "/bin/true")
    assert rc == 4 and ans is None and "NOT_FOUND" in err, (rc, err)


def test_exec_of_missing_command_fails_precondition(pod):
    start_app(pod)
    r = pod.pmctl("exec", "app", "--", "/no/such/command", check=False)
    assert r.returncode == 7 and "FAILED_PRECONDITION" in r.stderr, (r.returncode, r.stderr)
    assert units(pod, "pm-exec-*") == ""


def test_exec_death_by_signal_gives_128_plus_n(pod):
    start_app(pod)
    r = pod.pmctl("exec", "app", "--", "/bin/sh", "-c", "kill -9 $$", check=False)
    assert r.returncode == 137, (r.returncode, r.stderr)
    rc, ans, err = exec_sync(pod, "app", "/bin/sh", "-c", "kill -TERM $$")
    assert rc == 143, err
    assert (ans["exit_code"], ans["signal"], ans["reason"]) == (143, "TERM", "Signaled")


# -- stdin -------------------------------------------------------------------

def test_exec_streams_large_binary_stdin_intact(pod):
    start_app(pod)
    payload = os.urandom(32 * MiB)
    r = pod.pmctl("exec", "-i", "app", "--", "cat", input=payload, check=False, timeout=120)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout) == len(payload)
    assert hashlib.sha256(r.stdout).hexdigest() == hashlib.sha256(payload).hexdigest()


def test_exec_sync_passes_binary_stdin_intact(pod):
    start_app(pod)
    payload = os.urandom(2 * MiB)
    rc, ans, err = exec_sync(pod, "app", "cat", opts=("-i",), input=payload)
    assert rc == 0, err
    assert hashlib.sha256(ans["stdout"]).hexdigest() == hashlib.sha256(payload).hexdigest()
    assert ans["stdout_truncated"] is False


# -- terminal sessions -------------------------------------------------------

def test_interactive_tty_session_has_size_follows_resize_interrupts_and_exits_with_code(pod, tmp_path):
    start_app(pod)
    rcfile = tmp_path / "rc"
    cmd = " ".join(map(shlex.quote, pmctl_cmd(pod, "exec", "-it", "app", "--", "/bin/sh")))
    tmux = Tmux(pod.env)
    try:
        tmux.new_session(f"{cmd}; echo $? > {shlex.quote(str(rcfile))}", x=100, y=30)
        tmux.wait_pane(r"[#$] ?$", what="the shell's prompt")

        # The terminal has the size of the window.
        tmux.type("echo SIZE=$(stty size)")
        tmux.wait_pane(r"^SIZE=30 100$")

        # A resize reaches the command's terminal. (The resize and the next
        # keys may race through pmctl, so ask again until it shows.)
        tmux("resize-window", "-x", "120", "-y", "40")

        def resized():
            tmux.type("echo SIZE=$(stty size)")
            time.sleep(0.3)
            return re.search(r"^SIZE=40 120$", tmux.pane(), re.M)
        wait_for(resized, timeout=5, interval=0.2, what="the new size inside the session")

        # ^C interrupts the foreground command, not the session.
        tmux.type("sleep 4242")
        wait_for(lambda: pod_processes(pod, "sleep 4242"), timeout=5, what="sleep 4242 to run")
        tmux("send-keys", "C-c")
        wait_for(lambda: pod_processes(pod, "sleep 4242") == "", timeout=5, what="^C to end sleep")
        tmux.type("echo AFTER=$((6*7))")
        tmux.wait_pane(r"^AFTER=42$")
        assert not rcfile.exists(), "pmctl ended on ^C"

        # The session's exit code is pmctl's.
        tmux.type("exit 5")
        wait_for(lambda: rcfile.exists() and rcfile.read_text().strip(), timeout=10, what="pmctl to exit")
        assert rcfile.read_text().strip() == "5"
    finally:
        tmux.close()
    wait_for(lambda: units(pod, "pm-exec-*") == "", timeout=5, what="the exec unit to go")


# -- the client going away ---------------------------------------------------

def test_killed_client_has_its_command_stopped(pod):
    start_app(pod)
    p = subprocess.Popen(pmctl_cmd(pod, "exec", "app", "--", "sleep", "777"), env=pod.env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: pod_processes(pod, "sleep 777"), timeout=10, what="sleep 777 to run")
        assert units(pod, "pm-exec-*") != ""
    finally:
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=10)
    wait_for(lambda: pod_processes(pod, "sleep 777") == "", timeout=5, what="sleep 777 to be stopped")
    wait_for(lambda: units(pod, "pm-exec-*") == "", timeout=5, what="the exec unit to go")


def test_interrupted_client_cancels_and_stops_its_command(pod):
    start_app(pod)
    p = subprocess.Popen(pmctl_cmd(pod, "exec", "app", "--", "sleep", "555"), env=pod.env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: pod_processes(pod, "sleep 555"), timeout=10, what="sleep 555 to run")
        os.kill(p.pid, signal.SIGINT)
        _, err = p.communicate(timeout=10)
    finally:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
    assert p.returncode == 1 and "CANCELLED" in err, (p.returncode, err)
    # pmctl hears back once the command is gone.
    assert pod_processes(pod, "sleep 555") == ""
    wait_for(lambda: units(pod, "pm-exec-*") == "", timeout=5, what="the exec unit to go")


def test_killed_terminal_hangs_up_the_session_shell(pod):
    start_app(pod)
    mark = pod.path("/tmp/hup-mark")
    cmd = " ".join(map(shlex.quote, pmctl_cmd(pod, "exec", "-it", "app", "--", "/bin/sh")))
    tmux = Tmux(pod.env)
    try:
        tmux.new_session(f"exec {cmd}")
        pmctl_pid = int(tmux("display-message", "-p", "#{pane_pid}").stdout.strip())
        tmux.wait_pane(r"[#$] ?$", what="the shell's prompt")
        tmux.type("trap 'echo hup > /tmp/hup-mark; exit 1' HUP")
        tmux.type("sleep 778")
        wait_for(lambda: pod_processes(pod, "sleep 778"), timeout=5, what="sleep 778 to run")
    finally:
        tmux.close()
    wait_for(lambda: not os.path.exists(f"/proc/{pmctl_pid}"), timeout=5, what="pmctl to end")
    wait_for(lambda: pod_processes(pod, "sleep 778") == "", timeout=5, what="sleep 778 to be stopped")
    wait_for(lambda: units(pod, "pm-exec-*") == "", timeout=5, what="the exec unit to go")
    # The shell was told with SIGHUP (its trap ran), not killed outright.
    assert mark.exists() and mark.read_text() == "hup\n"


# -- many execs ---------------------------------------------------------------

def test_thousand_execs_leave_no_units_fds_or_terminals_behind(pod):
    start_app(pod)
    agent = pod.agent_pid()
    pts = pod.path("/dev/pts")
    # One of each first, so that whatever the agent opens once is open.
    pod.pmctl("exec", "--sync", "app", "--", "/bin/true")
    pod.pmctl("exec", "-t", "app", "--", "/bin/true")
    wait_for(lambda: units(pod, "pm-exec-*") == "", timeout=5, what="the warm-up units to go")
    fds_before = agent_fds(agent)
    pts_before = len(os.listdir(pts))

    def one(i):
        args = ("exec", "-t", "app", "--", "/bin/true") if i % 20 == 0 else \
               ("exec", "--sync", "app", "--", "/bin/true")
        return i, pod.pmctl(*args, check=False, timeout=60)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(one, range(1000)))
    failed = [(i, r.returncode, r.stderr) for i, r in results if r.returncode != 0]
    assert not failed, failed[:5]

    wait_for(lambda: units(pod, "pm-exec-*") == "", timeout=10, what="no exec units")
    try:
        wait_for(lambda: agent_fds(agent) == fds_before, timeout=5, what="the agent's fds to settle")
    except AssertionError:
        pass
    assert agent_fds(agent) == fds_before, f"the agent holds {agent_fds(agent)} fds, {fds_before} before"
    assert len(os.listdir(pts)) <= pts_before, os.listdir(pts)
    assert pod.agent_pid() == agent  # and the agent survived it


def test_fifty_concurrent_execs_each_get_their_own_output(pod):
    start_app(pod)
    results = {}

    def one(n):
        results[n] = pod.pmctl("exec", "app", "--", "/bin/sh", "-c", "echo $0; sleep 1", str(n),
                               check=False, timeout=60)

    t0 = time.monotonic()
    threads = [threading.Thread(target=one, args=(n,)) for n in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    for n in range(50):
        r = results[n]
        assert (r.returncode, r.stdout, r.stderr) == (0, f"{n}\n", ""), (n, r.returncode, r.stdout, r.stderr)
    # They ran side by side, not one after another.
    assert elapsed < 20, elapsed
    wait_for(lambda: units(pod, "pm-exec-*") == "", timeout=10, what="no exec units")


# -- run once and pipelines ---------------------------------------------------

def test_run_once_feeds_stdin_returns_output_and_exit_code_and_keeps_nothing(pod):
    r = pod.pmctl("run", "--rm", "-i", "--name", "fn", "--", "/bin/sh", "-c", "tr a-z A-Z; exit 4",
                  input="hello", check=False)
    assert r.returncode == 4, r.stderr
    assert r.stdout == "HELLO"
    assert "fn" not in [a["name"] for a in pod.json("ls")]
    wait_for(lambda: units(pod, "pm-run-*") == "", timeout=5, what="no run-once units")


def test_run_once_from_spec_file_uses_its_name_argv_and_env(pod, tmp_path):
    spec = tmp_path / "fn.json"
    spec.write_text(json.dumps({
        "name": "fnspec",
        "argv": ["/bin/sh", "-c", 'tr a-z A-Z; echo "$GREETING" >&2; exit 4'],
        "env": {"GREETING": "from-spec"},
    }))
    # --name renames the app of the spec.
    r = pod.pmctl("run", "--rm", "-i", "--name", "renamed", "-f", str(spec), input="hello", check=False)
    assert (r.returncode, r.stdout, r.stderr) == (4, "HELLO", "from-spec\n")
    # The spec names the app itself: no --name needed.
    r = pod.pmctl("run", "--rm", "-i", "-f", str(spec), input="hello", check=False)
    assert r.returncode == 4, r.stderr
    assert r.stdout == "HELLO"
    assert r.stderr == "from-spec\n"
    assert pod.json("ls") == []
    wait_for(lambda: units(pod, "pm-run-*") == "", timeout=5, what="no run-once units")


def test_pipeline_example_labels_and_annotates_every_item(pod):
    original = json.loads((PIPELINE / "resourcelist.json").read_text())
    r = pod.pmctl("pipe", "-f", str(PIPELINE / "set-label.json"), "-f", str(PIPELINE / "set-annotation.json"),
                  input=(PIPELINE / "resourcelist.json").read_text(), check=False)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["kind"] == "ResourceList"
    assert [i["metadata"]["name"] for i in out["items"]] == [i["metadata"]["name"] for i in original["items"]]
    for before, after in zip(original["items"], out["items"]):
        labels = after["metadata"]["labels"]
        assert labels["team"] == "platform"
        assert after["metadata"]["annotations"]["config.example.com/mutated-by"] == "podmutator"
        for k, v in before["metadata"].get("labels", {}).items():
            assert labels[k] == v  # the original labels are kept
    assert out["items"][1]["metadata"]["labels"] == {"app": "web", "team": "platform"}
    assert pod.json("ls") == []
    wait_for(lambda: units(pod, "pm-run-*") == "", timeout=5, what="no run-once units")


def test_failing_pipeline_stage_stops_it_and_is_named_with_its_stderr(pod):
    r = pod.pmctl("pipe", "-f", str(PIPELINE / "set-label.json"), "-f", str(PIPELINE / "fail.json"),
                  input=(PIPELINE / "resourcelist.json").read_text(), check=False)
    assert r.returncode == 3, (r.returncode, r.stderr)
    assert "stage 2 (reject)" in r.stderr
    assert "exit code 3" in r.stderr
    assert "validation failed" in r.stderr
    assert r.stdout == ""
    wait_for(lambda: units(pod, "pm-run-*") == "", timeout=5, what="no run-once units")


# -- output limits and flow control ---------------------------------------------

def test_exec_sync_caps_each_stream_at_16_mib_and_says_so(pod):
    start_app(pod)
    rc, ans, err = exec_sync(pod, "app", "head", "-c", str(20 * MiB), "/dev/zero", timeout=120)
    assert rc == 0, err
    assert len(ans["stdout"]) == 16 * MiB
    assert ans["stdout"] == bytes(16 * MiB)
    assert ans["stdout_truncated"] is True
    assert ans["stderr_truncated"] is False and ans["stderr"] == b""
    # Without --json, pmctl writes what was kept and says that it was cut.
    r = pod.pmctl("exec", "--sync", "app", "--", "head", "-c", str(20 * MiB), "/dev/zero", input=b"",
                  check=False, timeout=120)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout) == 16 * MiB
    assert r.stderr.decode() == f"pmctl: stdout was cut after {16 * MiB} bytes\n"


def test_slow_reader_slows_the_command_not_the_agent_memory(pod):
    start_app(pod)
    agent = pod.agent_pid()
    total = 200 * MiB
    # The agent built with sanitizers (ASAN_OPTIONS set for the suite) carries
    # shadow memory and quarantine: a looser bound there.
    limit_kib = (64 if "ASAN_OPTIONS" in os.environ else 16) * 1024
    p = subprocess.Popen(pmctl_cmd(pod, "exec", "app", "--", "head", "-c", str(total), "/dev/zero"),
                         env=pod.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
    try:
        got = len(p.stdout.read(65536))
        assert got > 0
        # Nobody reads for 2 s: the agent must not take up the slack.
        peak = 0
        pause_end = time.monotonic() + 2
        while time.monotonic() < pause_end:
            peak = max(peak, agent_rss_kib(agent))
            time.sleep(0.05)
        assert peak < limit_kib, f"agent VmRSS {peak} KiB while the reader paused"
        # The command waits for the reader (it is still running, far from done).
        assert pod_processes(pod, f"head -c {total}"), "the command finished while nobody read"
        while True:
            chunk = p.stdout.read(MiB)
            if not chunk:
                break
            got += len(chunk)
        err = p.stderr.read()
        rc = p.wait(timeout=60)
    finally:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
    assert rc == 0, err
    assert got == total


def test_killed_client_with_unread_stdin_has_its_command_stopped(pod, tmp_path):
    # The command never reads stdin, so the agent stops reading the client's
    # connection; the client's death must still be noticed.
    start_app(pod)
    payload = tmp_path / "in"
    payload.write_bytes(os.urandom(8 * MiB))
    with open(payload, "rb") as f:
        p = subprocess.Popen(pmctl_cmd(pod, "exec", "-i", "app", "--", "sleep", "888"), env=pod.env, stdin=f,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: pod_processes(pod, "sleep 888"), timeout=10, what="sleep 888 to run")
        time.sleep(0.5)  # let stdin pile up past the agent's limit
    finally:
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=10)
    wait_for(lambda: pod_processes(pod, "sleep 888") == "", timeout=5, what="sleep 888 to be stopped")
    wait_for(lambda: units(pod, "pm-exec-*") == "", timeout=5, what="the exec unit to go")


def test_reader_that_stalls_near_the_end_still_gets_every_byte(pod):
    start_app(pod)
    total = 20_000_000
    p = subprocess.Popen(pmctl_cmd(pod, "exec", "app", "--", "head", "-c", str(total), "/dev/zero"), env=pod.env,
                         stdout=subprocess.PIPE)
    got = len(p.stdout.read(total - 200_000))
    time.sleep(4)  # longer than the agent's drain grace after the command ended
    got += len(p.stdout.read())
    assert p.wait(timeout=30) == 0
    assert got == total


def test_exec_left_by_a_killed_agent_is_stopped_by_the_next(pod):
    start_app(pod)
    p = subprocess.Popen(pmctl_cmd(pod, "exec", "app", "--", "sleep", "999"), env=pod.env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: pod_processes(pod, "sleep 999"), timeout=10, what="sleep 999 to run")
        old = pod.agent_pid()
        os.kill(old, signal.SIGKILL)
        wait_for(lambda: pod.pmctl("info", check=False).returncode == 0 and pod.agent_pid() != old,
                 timeout=15, what="the agent to come back")
        wait_for(lambda: pod_processes(pod, "sleep 999") == "", timeout=5, what="the orphaned exec to stop")
        assert units(pod, "pm-exec-*") == ""
        assert pod.status("app")["state"] == "running"
    finally:
        p.kill()
        p.wait(timeout=10)


def test_bare_command_names_resolve_inside_the_rootfs(pod):
    # In the rootfs, /usr/bin/pm-probe is an absolute symlink to /opt/pm-probe,
    # which exists only there: followed from the pod's root it leads nowhere.
    pod.nsenter("sh", "-c", "mkdir -p /srv/tiny/usr/bin /srv/tiny/opt /srv/tiny/bin"
                " && cp /bin/busybox /srv/tiny/bin/sh"
                " && printf '#!/bin/sh\\nexit 6\\n' > /srv/tiny/opt/pm-probe && chmod 755 /srv/tiny/opt/pm-probe"
                " && ln -s /opt/pm-probe /srv/tiny/usr/bin/pm-probe")
    r = pod.pmctl("run", "--rm", "--name", "probe", "--rootfs", "/srv/tiny", "--", "pm-probe", check=False)
    assert r.returncode == 6, r.stderr
