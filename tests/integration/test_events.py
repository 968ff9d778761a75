"""Events (Watch) and processes (ps) against a real pod."""

import json
import subprocess
import time

from conftest import PMCTL, wait_for

SLEEPER = ("/bin/sleep", "infinity")


def start_watch(pod, *args):
    return subprocess.Popen([str(PMCTL), "--socket", str(pod.socket), "--json", "events", *args], env=pod.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def read_events(proc, count, timeout=10):
    """The next `count` events a watcher printed, as dicts."""
    events = []
    deadline = time.monotonic() + timeout
    while len(events) < count:
        assert time.monotonic() < deadline, f"only {len(events)} of {count} events: {events}"
        line = proc.stdout.readline()
        assert line, f"the watcher ended: {proc.stderr.read()}"
        events.append(json.loads(line))
    return events


def stop_watch(proc):
    proc.send_signal(2)  # SIGINT cancels the watch
    assert proc.wait(timeout=10) == 0, proc.stderr.read()


def test_full_lifecycle_events_arrive_in_order_with_exit_codes(pod):
    w = start_watch(pod)
    try:
        time.sleep(0.3)
        spec = pod.path("/tmp/three.json")
        spec.write_text(json.dumps({"name": "three", "argv": ["/bin/sh", "-c", "exit 3"]}))
        pod.pmctl("inject", "-f", str(spec))
        pod.pmctl("start", "three")
        pod.wait_state("three", "exited")
        pod.pmctl("stop", "three")  # exited already: no event
        pod.run("sl", *SLEEPER)
        pod.pmctl("stop", "sl")
        pod.pmctl("rm", "three")
        events = read_events(w, 8)
    finally:
        stop_watch(w)
    seen = [(e["type"], e["name"]) for e in events]
    assert seen == [("created", "three"), ("started", "three"), ("exited", "three"),
                    ("created", "sl"), ("started", "sl"), ("exited", "sl"), ("stopped", "sl"),
                    ("removed", "three")], seen
    assert (events[2]["exit_code"], events[2]["reason"]) == (3, "Error")
    assert (events[5]["exit_code"], events[5]["signal"]) == (143, "TERM")
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    assert all(a["time"] <= b["time"] for a, b in zip(events, events[1:]))


def test_restart_policy_shows_as_restarted_events(pod):
    pod.run("flaky", "/bin/sh", "-c", "sleep 0.3; exit 1", opts=("--restart", "on-failure"))
    w = start_watch(pod, "--app", "flaky", "--since", "1m")
    try:
        events = read_events(w, 6, timeout=15)
    finally:
        stop_watch(w)
        pod.pmctl("stop", "flaky")
    types = [e["type"] for e in events]
    assert types[:2] == ["created", "started"]
    assert "restarted" in types and "exited" in types
    assert all(e["name"] == "flaky" for e in events)


def test_late_watcher_gets_recent_events_with_since_and_filters_by_app(pod):
    pod.run("one", "/bin/true")
    pod.run("two", "/bin/true")
    pod.wait_state("two", "exited")
    w = start_watch(pod, "--since", "1m", "--app", "two")
    try:
        events = read_events(w, 3)
    finally:
        stop_watch(w)
    assert [e["type"] for e in events] == ["created", "started", "exited"]
    assert {e["name"] for e in events} == {"two"}


def test_a_watcher_that_reads_nothing_does_not_slow_other_clients(pod):
    w = start_watch(pod)  # a reading watcher, for comparison
    lazy = subprocess.Popen([str(PMCTL), "--socket", str(pod.socket), "--json", "events"], env=pod.env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)  # never read from
    try:
        time.sleep(0.3)
        t0 = time.monotonic()
        for i in range(150):
            pod.pmctl("run", "--name", f"a{i}", "--", "/bin/true")
        took = time.monotonic() - t0
        assert len(pod.json("ls")) == 150
        events = read_events(w, 150 * 3)
        assert sum(e["type"] == "created" for e in events) == 150
        # Operations went at their usual pace: well under a second each.
        assert took < 150 * 0.5, took
        assert pod.pmctl("info").returncode == 0
    finally:
        stop_watch(w)
        lazy.kill()
        lazy.wait(timeout=10)


def test_ps_lists_an_app_process_and_its_child_and_exec_sessions(pod):
    pod.run("tree", "/bin/sh", "-c", "sleep 1234 & exec sleep 4321")
    wait_for(lambda: len(pod.json("ps", "tree")) == 2, timeout=5, what="both processes")
    procs = pod.json("ps", "tree")
    commands = sorted(p["command"] for p in procs)
    assert commands == ["sleep 1234", "sleep 4321"], commands
    assert all(p["user"] == "root" and p["pid"] > 0 for p in procs)
    ex = subprocess.Popen([str(PMCTL), "--socket", str(pod.socket), "exec", "tree", "--", "sleep", "555"],
                          env=pod.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: any(p["command"] == "sleep 555" for p in pod.json("ps", "tree")), timeout=10,
                 what="the exec's process under the app")
        units = {p["unit"] for p in pod.json("ps", "tree")}
        assert any(u.startswith("pm-exec-") for u in units) and any(u.startswith("pm-app@") for u in units)
    finally:
        ex.kill()
        ex.wait(timeout=10)
    r = pod.pmctl("ps", "nosuch", check=False)
    assert r.returncode == 4


def cpu_ticks(pod, pid):
    fields = pod.nsenter("cat", f"/proc/{pid}/stat").stdout.rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def test_pause_stops_cpu_time_and_resume_restarts_it(pod):
    pod.run("busy", "/bin/sh", "-c", "while :; do :; done")
    pid = pod.status("busy")["pid"]
    w = start_watch(pod, "--app", "busy")
    try:
        time.sleep(0.3)
        pod.pmctl("pause", "busy")
        assert pod.status("busy")["state"] == "paused"
        t0 = cpu_ticks(pod, pid)
        time.sleep(1.0)
        assert cpu_ticks(pod, pid) - t0 <= 1, "a paused app kept running"
        pod.pmctl("resume", "busy")
        assert pod.status("busy")["state"] == "running"
        t1 = cpu_ticks(pod, pid)
        time.sleep(1.0)
        assert cpu_ticks(pod, pid) - t1 >= 20, "a resumed app did not run again"
        events = read_events(w, 2)
    finally:
        stop_watch(w)
    assert [e["type"] for e in events] == ["paused", "resumed"]
    # Pausing what is not running, resuming what is not paused: refused.
    assert pod.pmctl("resume", "busy", check=False).returncode == 7
    pod.run("done", "/bin/true")
    pod.wait_state("done", "exited")
    assert pod.pmctl("pause", "done", check=False).returncode == 7


def test_paused_apps_can_be_stopped_and_removed(pod):
    pod.run("p1", "/bin/sleep", "infinity")
    pod.run("p2", "/bin/sleep", "infinity")
    pod.pmctl("pause", "p1")
    pod.pmctl("pause", "p2")
    t0 = time.monotonic()
    pod.pmctl("stop", "-t", "5", "p1")
    assert time.monotonic() - t0 < 3
    st = pod.status("p1")
    assert (st["state"], st["exit_code"]) == ("exited", 143)
    pod.pmctl("rm", "-f", "p2")
    assert [a["name"] for a in pod.json("ls")] == ["p1"]


def test_stats_show_cpu_time_rising_and_memory_of_an_allocation(pod):
    pod.run("spin", "/bin/sh", "-c", "while :; do :; done")
    pod.run("mem", "/usr/bin/python3", "-c", "x = b'\\x01' * (50 << 20); import time; time.sleep(1000)")
    time.sleep(1.0)
    first = {a["name"]: a for a in pod.json("stats")}
    time.sleep(1.0)
    second = {a["name"]: a for a in pod.json("stats")}
    assert second["spin"]["cpu_usage_ns"] > first["spin"]["cpu_usage_ns"] + 300_000_000
    assert second["spin"]["cpu_percent"] > 30
    mem = second["mem"]
    assert 45 << 20 <= mem["memory_bytes"] <= 90 << 20, mem
    assert mem["memory_peak_bytes"] >= mem["memory_bytes"]
    assert mem["tasks"] >= 1
    assert mem["memory_source"] in ("cgroup", "proc")
    one = pod.json("stats", "spin")
    assert [a["name"] for a in one] == ["spin"]
    assert pod.pmctl("stats", "nosuch", check=False).returncode == 4
