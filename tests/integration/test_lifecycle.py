"""App lifecycle against a real pod: inject, start, stop, remove, list,
status, restart policies, exit codes, agent restarts."""

import json
import os
import signal
import subprocess
import time

import pytest

from conftest import REPO, wait_for

SLEEPER = ("/bin/sleep", "1000")


def test_empty_pod_stays_up_and_answers(pod):
    time.sleep(2)
    info = pod.json("info")
    assert info["pod_name"] == pod.name
    assert info["apps"] == 0
    assert info["protocol_version"] == 1
    assert info["systemd_version"]
    assert info["cgroup_mode"] in ("unified", "hybrid", "legacy")
    assert isinstance(info["limits_enforced"], bool)
    assert pod.info()["state"] == "running"
    # The pod's systemd is fully up, and nothing in it failed.
    state = pod.nsenter("systemctl", "is-system-running", check=False).stdout.strip()
    assert state == "running", state


def test_inject_takes_a_slot_made_beforehand(pod):
    """An app is an instance of the template pm-app@.service whose settings
    are a drop-in written into a directory the agent made beforehand: no unit
    directory changes, so systemd loads it without re-reading them."""
    unit_dir = pod.path("/run/systemd/system")

    def ready_slots():
        return {p.name[:-2] for p in unit_dir.glob("pm-app@*.service.d") if not (p / "app.conf").exists()}

    ready = wait_for(ready_slots, what="ready app slots")
    app_id = pod.run("slotted", *SLEEPER)
    unit = f"pm-app@{app_id}.service"
    assert unit in ready
    out = pod.nsenter("systemctl", "show", "-p", "FragmentPath", "-p", "DropInPaths", unit).stdout
    assert "FragmentPath=/run/systemd/system/pm-app@.service\n" in out
    assert f"DropInPaths=/run/systemd/system/{unit}.d/app.conf\n" in out
    pod.pmctl("rm", "-f", app_id)


def test_run_start_stop_remove_leaves_nothing(pod):
    app_id = pod.run("web", *SLEEPER)
    assert len(app_id) == 32
    st = pod.status("web")
    assert st["state"] == "running" and st["pid"] > 0 and st["id"] == app_id
    unit = st["unit"]
    assert pod.unit_loaded(unit)
    assert pod.path(f"/run/systemd/system/{unit}.d/app.conf").exists()

    # A running app is not removed without force.
    r = pod.pmctl("rm", "web", check=False)
    assert r.returncode == 7 and "stop it first" in r.stderr

    pod.pmctl("stop", "web")
    st = pod.status("web")
    assert st["state"] == "exited"
    assert st["exit_code"] == 143 and st["reason"] == "Signaled" and st["signal"] == "TERM"

    pod.pmctl("start", "web")
    assert pod.status("web")["state"] == "running"
    pod.pmctl("rm", "-f", "web")

    assert pod.json("ls") == []
    r = pod.pmctl("status", app_id, check=False)
    assert r.returncode == 4 and "no app" in r.stderr
    wait_for(lambda: not pod.unit_loaded(unit), timeout=5, what="unit unloaded")
    assert not pod.path(f"/run/systemd/system/{unit}.d/app.conf").exists()
    assert not pod.path(f"/run/podmutatord/apps/{app_id}.json").exists()
    assert not pod.path(f"/run/podmutatord/exit/{app_id}").exists()


def test_three_apps_report_state_and_exit_codes(pod):
    pod.run("ok", "/bin/sh", "-c", "exit 0")
    pod.run("bad", "/bin/sh", "-c", "exit 12")
    pod.run("sleeper", *SLEEPER)
    ok = pod.wait_state("ok", "exited")
    bad = pod.wait_state("bad", "exited")
    assert (ok["exit_code"], ok["reason"]) == (0, "Completed")
    assert (bad["exit_code"], bad["reason"]) == (12, "Error")
    for st in (ok, bad):
        assert 0 < st["created_at"] <= st["started_at"] <= st["finished_at"]
        assert st["pid"] == 0

    apps = {a["name"]: a for a in pod.json("ls")}
    assert set(apps) == {"ok", "bad", "sleeper"}
    assert apps["sleeper"]["state"] == "running" and apps["sleeper"]["finished_at"] == 0
    assert apps["bad"]["exit_code"] == 12
    # Keys a program relies on.
    for key in ("id", "name", "namespace", "state", "exit_code", "reason", "created_at", "started_at",
                "finished_at", "pid", "restart_count", "labels", "annotations", "unit"):
        assert key in apps["ok"]
    # List order is creation order; filters work.
    assert [a["name"] for a in pod.json("ls")] == ["ok", "bad", "sleeper"]
    assert [a["name"] for a in pod.json("ls", "--state", "exited")] == ["ok", "bad"]
    assert [a["name"] for a in pod.json("ls", "--state", "running")] == ["sleeper"]
    # The table a person reads says the same.
    table = pod.pmctl("ls").stdout
    assert "bad" in table and "12" in table and "running" in table


def test_death_by_signal_reports_128_plus_n(pod):
    pod.run("killed", "/bin/sh", "-c", "kill -KILL $$")
    st = pod.wait_state("killed", "exited")
    assert (st["exit_code"], st["reason"], st["signal"]) == (137, "Signaled", "KILL")


def test_an_app_that_ends_at_once_has_started(pod):
    """systemd may see such an app's end before its execve: the start still
    succeeds, and the exit is the app's own, not a failure to start."""
    for i in range(10):
        pod.run(f"brief-{i}", "/bin/sh", "-c", "kill -KILL $$" if i % 2 else "exit 3")
    for i in range(10):
        st = pod.wait_state(f"brief-{i}", "exited")
        assert st["exit_code"] == (137 if i % 2 else 3), st


def test_stop_one_app_while_another_keeps_running(pod):
    pod.run("a", *SLEEPER)
    pod.run("b", *SLEEPER)
    pid_b = pod.status("b")["pid"]
    pod.pmctl("stop", "a")
    assert pod.status("a")["state"] == "exited"
    b = pod.status("b")
    assert b["state"] == "running" and b["pid"] == pid_b
    pod.pmctl("start", "a")
    a = pod.status("a")
    assert a["state"] == "running" and a["pid"] > 0
    assert a["exit_code"] == 0 and a["finished_at"] == 0  # a running app reports no exit


def test_stop_of_exited_or_never_started_app_succeeds(pod):
    pod.run("done", "/bin/true")
    pod.wait_state("done", "exited")
    pod.pmctl("stop", "done")
    pod.pmctl("stop", "-t", "0", "done")
    spec = pod.path("/tmp/spec.json")
    spec.write_text(json.dumps({"name": "idle", "argv": ["/bin/true"]}))
    pod.pmctl("inject", "-f", str(spec))
    assert pod.status("idle")["state"] == "created"
    pod.pmctl("stop", "idle")
    assert pod.status("idle")["state"] == "created"


def test_stop_escalates_to_sigkill_after_grace_period(pod):
    pod.run("stubborn", "/bin/sh", "-c", "trap '' TERM; while :; do sleep 0.1; done")
    t0 = time.monotonic()
    pod.pmctl("stop", "-t", "2", "stubborn")
    took = time.monotonic() - t0
    st = pod.status("stubborn")
    assert 1.9 <= took < 6, took
    assert (st["exit_code"], st["signal"]) == (137, "KILL")

    pod.pmctl("start", "stubborn")
    t0 = time.monotonic()
    pod.pmctl("stop", "-t", "0", "stubborn")
    assert time.monotonic() - t0 < 1.5
    assert pod.status("stubborn")["signal"] == "KILL"


def test_stop_signal_from_spec_is_used(pod):
    script = "trap 'exit 42' INT; trap '' TERM; while :; do sleep 0.1; done"
    spec = pod.path("/tmp/int.json")
    spec.write_text(json.dumps({"name": "intapp", "argv": ["/bin/sh", "-c", script],
                                "stop_signal": "SIGINT"}))
    pod.pmctl("inject", "--start", "-f", str(spec))
    pod.pmctl("stop", "-t", "5", "intapp")
    assert pod.status("intapp")["exit_code"] == 42


def test_restart_on_failure_restarts_until_success(pod):
    # Fails twice, then succeeds: two restarts, final exit 0.
    script = ('n=$(cat /tmp/count 2>/dev/null || echo 0); n=$((n+1)); echo $n > /tmp/count; '
              '[ "$n" -ge 3 ]')
    pod.run("flaky", "/bin/sh", "-c", script, opts=("--restart", "on-failure"))
    st = wait_for(lambda: (s := pod.status("flaky"))["state"] == "exited" and s["exit_code"] == 0 and s,
                  timeout=15, what="flaky to succeed")
    assert st["restart_count"] == 2
    assert pod.path("/tmp/count").read_text().strip() == "3"


def test_restart_always_restarts_after_success(pod):
    pod.run("loop", "/bin/sh", "-c", "sleep 0.2", opts=("--restart", "always"))
    wait_for(lambda: pod.status("loop")["restart_count"] >= 2, timeout=15, what="two restarts")
    pod.pmctl("stop", "loop")
    st = pod.status("loop")
    assert st["state"] == "exited"
    count = st["restart_count"]
    time.sleep(1)
    assert pod.status("loop")["restart_count"] == count  # stopped means stopped


def test_exit_status_survives_unit_garbage_collection_and_agent_restart(pod):
    pod.run("gc", *SLEEPER)
    pod.pmctl("stop", "gc")
    st = pod.status("gc")
    assert (st["exit_code"], st["signal"]) == (143, "TERM")
    # Stopped units are collected by systemd; the agent keeps the exit.
    wait_for(lambda: not pod.unit_loaded(st["unit"]), timeout=5, what="unit collected")
    _kill_agent(pod)
    again = pod.status("gc")
    assert again == st


def test_exited_apps_keep_their_exit_across_agent_restarts(pod):
    pod.run("zero", "/bin/sh", "-c", "exit 0")
    pod.run("twelve", "/bin/sh", "-c", "exit 12")
    pod.run("sig", "/bin/sh", "-c", "kill -TERM $$")
    before = {n: pod.wait_state(n, "exited") for n in ("zero", "twelve", "sig")}
    _kill_agent(pod)
    after = {n: pod.status(n) for n in before}
    assert after == before
    assert [after[n]["exit_code"] for n in ("zero", "twelve", "sig")] == [0, 12, 143]
    # And they start again.
    pod.pmctl("start", "zero")
    st = wait_for(lambda: (s := pod.status("zero"))["started_at"] > before["zero"]["started_at"] and s,
                  what="zero to run again")
    assert st["state"] in ("running", "exited")


def _kill_agent(pod):
    old = pod.agent_pid()
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: _agent_answers(pod) and pod.agent_pid() != old, timeout=15, what="agent restarted")
    return old


def _agent_answers(pod):
    return pod.pmctl("info", check=False, timeout=10).returncode == 0


def test_agent_kill9_leaves_apps_untouched(pod):
    pod.run("runner", *SLEEPER, opts=("--label", "tier=web", "--annotation", "note=keep me"))
    pod.run("finished", "/bin/sh", "-c", "exit 3")
    pod.wait_state("finished", "exited")
    before = pod.json("ls")
    runner_pid = pod.status("runner")["pid"]

    _kill_agent(pod)

    after = pod.json("ls")
    assert after == before
    runner = pod.status("runner")
    assert runner["pid"] == runner_pid and runner["state"] == "running"
    assert runner["labels"] == {"tier": "web"} and runner["annotations"] == {"note": "keep me"}
    pod.pmctl("stop", "runner")
    assert pod.status("runner")["state"] == "exited"


def test_exit_recorded_while_agent_is_down(pod):
    # The app exits while the agent is frozen; the agent is then killed, so
    # it never saw the exit. The restarted agent must still report it.
    pod.nsenter("mkfifo", "/tmp/go-fifo")
    pod.run("late", "/bin/sh", "-c", "read x < /tmp/go-fifo; exit 9")  # waits for the fifo
    agent = pod.agent_pid()
    os.kill(agent, signal.SIGSTOP)
    try:
        with open(pod.path("/tmp/go-fifo"), "w") as f:
            f.write("go\n")
        time.sleep(1.0)
    finally:
        os.kill(agent, signal.SIGKILL)
    wait_for(lambda: _agent_answers(pod), timeout=15, what="agent back")
    st = pod.wait_state("late", "exited")
    assert (st["exit_code"], st["reason"]) == (9, "Error")
    assert st["finished_at"] >= st["started_at"] > 0


def test_two_hundred_apps_need_no_daemon_reload(pod):
    watcher = subprocess.Popen(pod.sdprobe("watch-reloads"),
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert watcher.stdout.readline().strip() == "ready"
        for i in range(200):
            pod.pmctl("run", "--name", f"app{i}", "--", "/bin/true")
        assert len(pod.json("ls")) == 200
        # The watcher must see a reload when there is one.
        pod.nsenter("systemctl", "daemon-reload")
        time.sleep(0.5)
    finally:
        out, _ = watcher.communicate(input="", timeout=30)
    assert out.strip() == "1", f"Reloading signals seen: {out!r} (1 expected: our own daemon-reload)"


def test_names_namespaces_and_id_prefixes(pod):
    a = pod.run("web", *SLEEPER)
    b = pod.run("web", *SLEEPER, opts=("--ns", "other"))
    assert a != b
    r = pod.pmctl("run", "--name", "web", "--", *SLEEPER, check=False)
    assert r.returncode == 6 and "exists" in r.stderr
    assert pod.status("web")["id"] == a
    assert pod.json("status", "--ns", "other", "web")["id"] == b
    assert pod.status(a[:8])["id"] == a
    assert [x["id"] for x in pod.json("ls", "--ns", "other")] == [b]
    r = pod.pmctl("status", "nosuch", check=False)
    assert r.returncode == 4
    pod.pmctl("rm", "-f", a[:10])
    assert pod.json("status", "--ns", "other", "web")["state"] == "running"


def test_labels_select_and_annotations_come_back_unchanged(pod):
    note = 'multi\nline "quoted" $HOME %h \\ ünïcödé'
    pod.run("l1", *SLEEPER, opts=("--label", "tier=web", "--annotation", f"note={note}"))
    pod.run("l2", *SLEEPER, opts=("--label", "tier=db"))
    assert [a["name"] for a in pod.json("ls", "-l", "tier=web")] == ["l1"]
    assert pod.status("l1")["annotations"] == {"note": note}


def test_bad_spec_files_are_rejected_with_the_field_named(pod, tmp_path):
    cases = {
        '{"name": "x", "argv": ["/bin/true"], "bogus": 1}': "bogus",
        '{"name": "x", "argv": "/bin/true"}': "argv",
        '{"name": "x", "argv": ["/bin/true"], "restart": "sometimes"}': "restart",
        '{"name": "X", "argv": ["/bin/true"]}': "name",
        '{"name": "x", "argv": []}': "argv",
        '{"name": "x", "argv": ["/bin/true"], "env": {"A": 1}}': "env",
        '{"name": "x", "argv": ["/bin/true"]': "",
    }
    for text, field in cases.items():
        f = tmp_path / "spec.json"
        f.write_text(text)
        r = pod.pmctl("inject", "-f", str(f), check=False)
        assert r.returncode == 5, (text, r.stderr)
        assert field in r.stderr, (text, r.stderr)
    assert pod.json("ls") == []


def test_apps_cannot_reach_the_control_socket_or_agent_state(pod):
    check = ("for p in /run/podmutator/control.sock /run/podmutatord/apps; do "
             "  if [ -e $p ]; then echo visible: $p; exit 1; fi; done; exit 0")
    pod.run("probe", "/bin/sh", "-c", check)
    st = pod.wait_state("probe", "exited")
    assert st["exit_code"] == 0, "an app could see the agent's files"
    # A rootfs that would hold the agent's files is refused.
    for rootfs in ("/run", "/run/podmutatord", "/run/podmutator"):
        r = pod.pmctl("run", "--name", "escape", "--rootfs", rootfs, "--", "/bin/true", check=False)
        assert r.returncode in (5, 9), (rootfs, r.stderr)
    assert [a["name"] for a in pod.json("ls")] == ["probe"]


def test_failing_apps_and_removing_every_app_never_stop_the_pod(pod):
    pod.run("crash", "/bin/sh", "-c", "exit 1")
    r = pod.pmctl("run", "--name", "nosuch", "--", "/nonexistent/binary", check=False)
    assert r.returncode == 7 and "not found" in r.stderr
    pod.wait_state("crash", "exited")
    for a in pod.json("ls"):
        pod.pmctl("rm", "-f", a["id"])
    assert pod.json("ls") == []
    time.sleep(1)
    assert pod.info()["state"] == "running"
    assert pod.json("info")["apps"] == 0


def test_manifest_apps_start_with_the_pod(new_pod):
    p = new_pod()
    p.boot("--manifest", str(REPO / "examples" / "pod-manifest.json"))
    assert p.status("web")["state"] == "running"
    once = wait_for(lambda: (s := p.json("status", "--ns", "jobs", "once"))["state"] == "exited" and s,
                    what="once to finish")
    assert (once["exit_code"], once["reason"]) == (0, "Completed")


def test_pod_stop_is_graceful_and_cleans_up(new_pod):
    p = new_pod()
    p.boot()
    p.run("s", *SLEEPER)
    r = p.stop()
    assert r.returncode == 0, r.stderr
    assert p.info() is None
    assert not p.socket.exists()
    assert not (p.state_root / p.name).exists()
    p.booted = False


def test_daemon_reload_in_the_pod_changes_nothing_the_agent_reports(pod):
    pod.run("steady", *SLEEPER)
    pod.run("over", "/bin/sh", "-c", "exit 4")
    pod.wait_state("over", "exited")
    before = pod.json("ls")
    pod.nsenter("systemctl", "daemon-reload")
    wait_for(lambda: pod.json("ls") == before, timeout=5, what="the agent's view after a reload")
    # Stop and remove still reach systemd.
    pod.pmctl("stop", "steady")
    st = pod.status("steady")
    assert (st["state"], st["exit_code"]) == ("exited", 143)
    wait_for(lambda: not pod.unit_loaded(st["unit"]), timeout=5, what="stopped unit collected")
