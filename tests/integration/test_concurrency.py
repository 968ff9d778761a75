"""Concurrent clients against one real pod: every answer is right for what
the client asked, nothing hangs, the agent never answers INTERNAL, and what
is left at the end is exactly what should be (apps, unit files, records,
running processes)."""

import json
import os
import random
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from conftest import PMCTL, wait_for

SLEEPER = ["/bin/sleep", "1000"]
WORKERS = 20
OPS_PER_WORKER = 50
STATES = {"unknown", "created", "starting", "running", "stopping", "exited", "paused"}


class Client:
    """pmctl calls of one thread, each bounded in time and counted."""

    def __init__(self, pod, who):
        self.pod = pod
        self.who = who
        self.calls = 0

    def __call__(self, *args, ok=(0,)):
        self.calls += 1
        t0 = time.monotonic()
        r = self.pod.pmctl("--timeout", "30", *args, check=False, timeout=60)
        took = time.monotonic() - t0
        assert r.returncode in ok, f"{self.who}: pmctl {' '.join(args)} -> {r.returncode} after {took:.1f}s: {r.stderr}"
        assert took < 30, f"{self.who}: pmctl {' '.join(args)} took {took:.1f}s"
        return r

    def json(self, *args, ok=(0,)):
        r = self(*args, ok=ok)
        return json.loads(r.stdout) if r.returncode == 0 else None


def _pod_processes(pod, comm):
    """Host PIDs of processes named `comm` in the pod's PID namespace."""
    pidns = os.readlink(f"/proc/{pod.leader}/ns/pid")
    found = []
    for d in Path("/proc").glob("[0-9]*"):
        try:
            if os.readlink(d / "ns/pid") == pidns and (d / "comm").read_text().strip() == comm:
                found.append(int(d.name))
        except OSError:
            continue
    return found


def _loaded_app_units(pod):
    out = pod.nsenter("systemctl", "list-units", "--all", "--plain", "--no-legend", "pm-app@*").stdout
    return {line.split()[0]: line.split()[2] for line in out.splitlines() if line.strip()}


def _files(pod, directory, pattern):
    d = pod.path(directory)
    return sorted(p.name for p in d.glob(pattern)) if d.exists() else []


def _one_worker(pod, k, spec_dir):
    """Fifty operations on this worker's own apps, in its own namespace,
    each result checked against what must hold after it."""
    pm = Client(pod, f"worker {k}")
    ns = f"w{k}"
    removed = []
    for cycle in range(4):  # 11 calls per cycle
        name = f"app{cycle}"
        spec = spec_dir / f"w{k}-{cycle}.json"
        spec.write_text(json.dumps({"name": name, "namespace": ns, "argv": SLEEPER,
                                    "labels": {"worker": str(k), "cycle": str(cycle)}}))
        st = pm.json("--json", "inject", "-f", str(spec))
        assert (st["name"], st["namespace"], st["state"]) == (name, ns, "created"), st
        app_id = st["id"]

        st = pm.json("--json", "status", "--ns", ns, name)
        assert (st["id"], st["state"], st["pid"]) == (app_id, "created", 0), st

        st = pm.json("--json", "start", "--ns", ns, name)
        assert st["id"] == app_id and st["state"] == "running" and st["pid"] > 0, st
        pid = st["pid"]

        st = pm.json("--json", "status", app_id)
        assert (st["state"], st["pid"]) == ("running", pid), st

        st = pm.json("--json", "stop", "--ns", ns, name)
        assert (st["state"], st["exit_code"], st["signal"], st["pid"]) == ("exited", 143, "TERM", 0), st

        st = pm.json("--json", "status", app_id[:20])
        assert (st["state"], st["exit_code"], st["reason"]) == ("exited", 143, "Signaled"), st

        st = pm.json("--json", "start", app_id)
        assert st["state"] == "running" and st["pid"] > 0 and st["exit_code"] == 0, st

        apps = pm.json("--json", "ls", "--ns", ns)
        assert [(a["name"], a["state"]) for a in apps] == [(name, "running")], apps

        pm("rm", "-f", "--ns", ns, name)
        removed.append(app_id)

        r = pm("status", app_id, ok=(4,))
        assert "no app" in r.stderr

        assert pm.json("--json", "ls", "--ns", ns) == []

    # One app per worker stays (6 calls).
    keeper = pm("run", "--name=keeper", f"--ns={ns}", "--label", f"worker={k}", "--", *SLEEPER).stdout.strip()
    st = pm.json("--json", "status", "--ns", ns, "keeper")
    assert (st["id"], st["state"]) == (keeper, "running") and st["pid"] > 0, st
    # No grace: systemd's SIGTERM and the agent's SIGKILL race to end sleep(1).
    st = pm.json("--json", "stop", "-t", "0", keeper)
    assert st["state"] == "exited" and (st["exit_code"], st["signal"]) in ((137, "KILL"), (143, "TERM")), st
    exit_code = st["exit_code"]
    st = pm.json("--json", "status", keeper)
    assert (st["state"], st["exit_code"], st["pid"]) == ("exited", exit_code, 0), st
    st = pm.json("--json", "start", "--ns", ns, "keeper")
    assert st["state"] == "running" and st["pid"] > 0, st
    apps = pm.json("--json", "ls", "-l", f"worker={k}")
    assert [(a["id"], a["state"]) for a in apps] == [(keeper, "running")], apps

    assert pm.calls == OPS_PER_WORKER
    return keeper, removed


def test_twenty_clients_fifty_operations_each_get_consistent_results(pod, tmp_path):
    agent = pod.agent_pid()
    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        futures = [pool.submit(_one_worker, pod, k, tmp_path) for k in range(WORKERS)]
        results = [f.result(timeout=300) for f in futures]
    took = time.monotonic() - t0

    keepers = {app_id for app_id, _ in results}
    removed = {app_id for _, ids in results for app_id in ids}
    assert len(keepers) == WORKERS and len(removed) == 4 * WORKERS and not keepers & removed

    # Exactly the apps that should exist, in the state they were left in.
    apps = pod.json("ls")
    assert {a["id"] for a in apps} == keepers
    assert {(a["namespace"], a["name"], a["state"]) for a in apps} == \
        {(f"w{k}", "keeper", "running") for k in range(WORKERS)}
    info = pod.json("info")
    assert info["apps"] == WORKERS and info["apps_by_state"] == {"running": WORKERS}

    # Nothing is left of removed apps: unit files, records, exit records,
    # loaded units, processes.
    units = {a["unit"] for a in apps}
    assert set(pod.app_unit_files()) == units
    assert set(_files(pod, "/run/podmutatord/apps", "*.json")) == {f"{i}.json" for i in keepers}
    assert not {n.split(".")[0] for n in _files(pod, "/run/podmutatord/exit", "*")} & removed
    loaded = wait_for(lambda: set(u := _loaded_app_units(pod)) == units and u, timeout=10,
                      what="only the keepers' units loaded")
    assert set(loaded.values()) == {"active"}
    assert len(_pod_processes(pod, "sleep")) == WORKERS
    assert pod.agent_pid() == agent
    print(f"{WORKERS * OPS_PER_WORKER} operations in {took:.1f}s")


def test_concurrent_start_stop_status_on_one_app_always_get_a_valid_answer(pod):
    """Calls on the same app interleave as systemd's job queue decides, but
    each gets a well-formed answer in time, never INTERNAL, and a last stop
    leaves the app exited with nothing running."""
    agent = pod.agent_pid()
    app_id = pod.run("shared", *SLEEPER)
    unit = pod.status("shared")["unit"]
    threads, calls = 10, 20
    barrier = threading.Barrier(threads)
    seen = {"start": set(), "stop": set(), "status": set()}
    lock = threading.Lock()

    def hammer(k):
        rnd = random.Random(k)
        pm = Client(pod, f"hammer {k}")
        barrier.wait(timeout=30)
        for _ in range(calls):
            verb = rnd.choice(["start", "stop", "stop0", "status", "status", "ls"])
            if verb == "start":
                # A start whose job a concurrent stop cancels fails cleanly.
                r = pm("--json", "start", "shared", ok=(0, 7))
                if r.returncode == 7:
                    assert "did not start" in r.stderr, r.stderr
            elif verb.startswith("stop"):
                opts = ["-t", "0"] if verb == "stop0" else []
                r = pm("--json", "stop", *opts, "shared")
            elif verb == "status":
                r = pm("--json", "status", "shared")
            else:
                r = pm("--json", "ls")
                apps = json.loads(r.stdout)
                assert [a["id"] for a in apps] == [app_id], apps
                continue
            if r.returncode == 0:
                st = json.loads(r.stdout)
                assert st["id"] == app_id and st["state"] in STATES, st
                if st["state"] == "running":
                    assert st["pid"] > 0, st
                if st["state"] == "exited":
                    assert st["pid"] == 0 and st["exit_code"] in (137, 143), st
            with lock:
                seen[verb.rstrip("0")].add(r.returncode)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        for f in [pool.submit(hammer, k) for k in range(threads)]:
            f.result(timeout=240)
    assert seen["start"] and seen["stop"] and seen["status"] == {0}, seen
    print(f"exit codes seen: {seen}")

    pod.pmctl("stop", "-t", "0", "shared")
    st = pod.status("shared")
    assert st["state"] == "exited" and st["pid"] == 0 and st["exit_code"] in (137, 143), st
    active = pod.nsenter("systemctl", "show", "-p", "ActiveState", "--value", unit).stdout.strip()
    assert active in ("inactive", "failed"), active
    wait_for(lambda: not _pod_processes(pod, "sleep"), timeout=5, what="no sleeper left")
    # And it still works normally.
    pod.pmctl("start", "shared")
    assert pod.status("shared")["state"] == "running"
    active = pod.nsenter("systemctl", "show", "-p", "ActiveState", "--value", unit).stdout.strip()
    assert active == "active", active
    assert len(_pod_processes(pod, "sleep")) == 1
    assert pod.json("ls")[0]["id"] == app_id
    assert pod.agent_pid() == agent


def _spawn(pod, *args):
    return subprocess.Popen([str(PMCTL), "--socket", str(pod.socket), "--timeout", "30", *args], env=pod.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_remove_racing_a_start_never_leaves_an_app_running_unknown_to_the_agent(pod, tmp_path):
    """Start and Remove of a never-started app sent at the same moment: either
    order is fine, but when Remove succeeds the app must be gone everywhere:
    no unit running in systemd, no process, no file."""
    agent = pod.agent_pid()
    outcomes = []
    for i in range(20):
        spec = tmp_path / f"r{i}.json"
        spec.write_text(json.dumps({"name": f"r{i}", "argv": SLEEPER}))
        app_id = pod.pmctl("inject", "-f", str(spec)).stdout.strip()
        start, rm = _spawn(pod, "start", f"r{i}"), _spawn(pod, "rm", f"r{i}")
        _, start_err = start.communicate(timeout=60)
        _, rm_err = rm.communicate(timeout=60)
        outcomes.append((start.returncode, rm.returncode))
        # start: OK, not found (rm came first) or did not start (its job was cancelled).
        assert start.returncode in (0, 4, 7), start_err
        # rm: OK, or refused because the app already runs.
        assert rm.returncode in (0, 7), rm_err
        if rm.returncode == 7:
            assert "stop it first" in rm_err
            pod.pmctl("rm", "-f", app_id)
        assert not any(a["id"] == app_id for a in pod.json("ls"))

    # Every app was removed, so nothing of any of them may remain.
    time.sleep(0.5)
    leftover = _loaded_app_units(pod)
    running = _pod_processes(pod, "sleep")
    assert not running and not leftover, \
        f"removed apps still run: units {leftover}, sleep PIDs {running}; (start, rm) exits: {outcomes}"
    assert pod.app_unit_files() == []
    assert pod.agent_pid() == agent
