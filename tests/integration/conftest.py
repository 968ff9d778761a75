"""Integration tests: real pods (systemd as PID 1, booted by systemd-nspawn
through pm-stage1), driven through pmctl and the control socket.

Every pod a test boots is stopped when the test ends, pass or fail. Pods of
one test run live under their own state and run roots, so they never touch
the node's real pods."""

import json
import os
import secrets
import shutil
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("PM_BUILD_DIR", REPO / "build"))
PMCTL = BUILD / "client" / "pmctl"
STAGE1 = BUILD / "stage1" / "pm-stage1"
SDPROBE = BUILD / "tests" / "sdprobe"

# Host-side programs report sanitizer findings on stderr (and fail); only the
# agent inside the pod writes them into its control dir.
HOST_ENV = {k: v for k, v in os.environ.items() if k not in ("ASAN_OPTIONS", "UBSAN_OPTIONS")}
HOST_ENV["ASAN_OPTIONS"] = "detect_leaks=1"
HOST_ENV["UBSAN_OPTIONS"] = "halt_on_error=1:print_stacktrace=1"


def wait_for(predicate, timeout=10.0, interval=0.02, what="condition"):
    """Polls predicate until it returns a truthy value; fails after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class Pod:
    def __init__(self, name, state_root, run_root):
        self.name = name
        self.state_root = state_root
        self.run_root = run_root
        self.env = dict(HOST_ENV, PM_STATE_ROOT=str(state_root), PM_RUN_ROOT=str(run_root))
        # The agent inside gets the suite's sanitizer settings, with reports
        # written into the control dir (visible from here).
        self.agent_env = dict(self.env)
        for key in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
            if key in os.environ:
                self.agent_env[key] = os.environ[key]
        self.socket = run_root / name / "control.sock"
        self.control_dir = run_root / name
        self.booted = False

    # -- pod lifecycle -------------------------------------------------
    def boot(self, *extra, timeout=60):
        r = subprocess.run([str(STAGE1), "run", "--name", self.name, "--detach", *extra],
                           env=self.agent_env, capture_output=True, text=True, timeout=timeout)
        self.booted = True  # even a failed run may have left something to stop
        assert r.returncode == 0, f"pm-stage1 run failed:\n{r.stdout}\n{r.stderr}"
        return r

    def stop(self):
        r = subprocess.run([str(STAGE1), "stop", self.name, "--timeout", "10"],
                           env=self.env, capture_output=True, text=True, timeout=60)
        return r

    def info(self):
        r = subprocess.run([str(STAGE1), "list", "--json"], env=self.env, capture_output=True,
                           text=True, timeout=10)
        for p in json.loads(r.stdout):
            if p["name"] == self.name:
                return p
        return None

    @property
    def leader(self):
        return int(self.info()["leader_pid"])

    def path(self, inside):
        """A path inside the pod, as the node sees it."""
        return Path(f"/proc/{self.leader}/root{inside}")

    def app_unit_files(self):
        """The app units that have their settings on disk: each app is an
        instance of pm-app@.service with its own drop-in app.conf."""
        d = self.path("/run/systemd/system")
        return sorted(p.parent.name[:-2] for p in d.glob("pm-app@*.service.d/app.conf"))

    def sanitizer_reports(self):
        return sorted(self.control_dir.glob("sanitizer*")) if self.control_dir.exists() else []

    # -- talking to the agent ------------------------------------------
    def pmctl(self, *args, check=True, input=None, timeout=60):
        r = subprocess.run([str(PMCTL), "--socket", str(self.socket), *args], env=self.env,
                           capture_output=True, input=input, text=input is None or isinstance(input, str),
                           timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"pmctl {' '.join(args)} exited {r.returncode}:\n{r.stdout}\n{r.stderr}")
        return r

    def json(self, *args):
        return json.loads(self.pmctl("--json", *args).stdout)

    def run(self, name, *cmd, opts=()):
        return self.pmctl("run", "--name", name, *opts, "--", *cmd).stdout.strip()

    def status(self, app):
        return self.json("status", app)

    def wait_state(self, app, state, timeout=10):
        return wait_for(lambda: (s := self.status(app))["state"] == state and s,
                        timeout=timeout, what=f"{app} to be {state}")

    # -- looking at the pod's systemd from the node ---------------------
    def sd_socket(self):
        return str(self.path("/run/systemd/private"))

    def sdprobe(self, *args, **kw):
        """sdprobe from inside the pod's PID namespace: the pod's systemd
        refuses private-socket peers it cannot see."""
        # LeakSanitizer cannot list its own threads there (/proc is the
        # node's), so it would fail the probe at exit whatever it found.
        return ["nsenter", "-t", str(self.leader), "-p", "--", "env", "ASAN_OPTIONS=detect_leaks=0",
                str(SDPROBE), self.sd_socket(), *args]

    def unit_loaded(self, unit):
        r = subprocess.run(self.sdprobe("loaded", unit), capture_output=True,
                           text=True, timeout=10, env=HOST_ENV)
        assert r.returncode == 0, r.stderr
        return r.stdout.strip() == "loaded"

    def nsenter(self, *cmd, check=True, timeout=30):
        """Runs cmd inside the pod's namespaces (not as an app)."""
        r = subprocess.run(["nsenter", "-t", str(self.leader), "-m", "-u", "-i", "-n", "-p", "--", *cmd],
                           capture_output=True, text=True, timeout=timeout)
        if check:
            assert r.returncode == 0, f"{cmd}: {r.stderr}"
        return r

    def agent_pid(self):
        """The agent's PID as the node sees it."""
        r = self.nsenter("systemctl", "show", "-p", "MainPID", "--value", "podmutator.service")
        inner = int(r.stdout.strip())
        assert inner > 0, "agent not running"
        # Map the pod's PID to the node's through NSpid of the node's view.
        for status in Path("/proc").glob("[0-9]*/status"):
            try:
                text = status.read_text()
            except OSError:
                continue
            for line in text.splitlines():
                if line.startswith("NSpid:"):
                    pids = line.split()[1:]
                    if len(pids) >= 2 and int(pids[-1]) == inner and self._in_pod(int(pids[0])):
                        return int(pids[0])
        raise AssertionError("agent PID not found on the node")

    def _in_pod(self, pid):
        try:
            return os.readlink(f"/proc/{pid}/ns/pid") == os.readlink(f"/proc/{self.leader}/ns/pid") \
                and pid != self.leader
        except OSError:
            return False


@pytest.fixture(scope="session")
def roots(tmp_path_factory):
    session = secrets.token_hex(3)
    state_root = Path(f"/var/tmp/pm-test-{session}/state")
    run_root = Path(f"/run/pm-test-{session}")
    state_root.mkdir(parents=True)
    run_root.mkdir(parents=True)
    yield state_root, run_root
    shutil.rmtree(state_root.parent, ignore_errors=True)
    shutil.rmtree(run_root, ignore_errors=True)


def _make_pod(roots):
    state_root, run_root = roots
    return Pod("t-" + secrets.token_hex(4), state_root, run_root)


@pytest.fixture
def new_pod(roots):
    """A pod not yet booted; the test boots it (with its own options).
    Stopped at the end whatever happens."""
    pods = []

    def make():
        p = _make_pod(roots)
        pods.append(p)
        return p

    yield make
    for p in pods:
        _teardown(p)


@pytest.fixture
def pod(new_pod):
    """A booted, empty pod, stopped at the end of the test."""
    p = new_pod()
    p.boot()
    return p


def _teardown(p):
    if not p.booted:
        return
    reports = p.sanitizer_reports()
    texts = [r.read_text(errors="replace")[:4000] for r in reports]
    r = p.stop()
    assert r.returncode == 0, f"pm-stage1 stop failed: {r.stderr}"
    assert not texts, "sanitizer reports from the agent:\n" + "\n".join(texts)
