"""The pod's log daemon (pm-logd.service) against real pods: an app's output
streams survive the daemon's own restart (the log keeper, pm-logkeep.service,
holds a copy of each), and the keeper's, and an app injected while the
daemon is down is refused cleanly."""

import socket


from conftest import REPO, wait_for


def counted_lines(text):
    return [int(line.split()[1]) for line in text.splitlines() if line.startswith("n ")]


def test_streams_survive_a_restart_of_the_log_daemon(pod):
    pod.run("ticker", "/bin/sh", "-c", "i=0; while true; do echo n $i; i=$((i+1)); sleep 0.05; done")
    wait_for(lambda: len(counted_lines(pod.pmctl("logs", "ticker").stdout)) >= 10, what="the first lines")
    before = pod.nsenter("systemctl", "show", "-p", "MainPID", "--value", "pm-logd.service").stdout.strip()
    pod.nsenter("systemctl", "restart", "pm-logd.service")
    after = pod.nsenter("systemctl", "show", "-p", "MainPID", "--value", "pm-logd.service").stdout.strip()
    assert before != after and after != "0"
    seen = wait_for(lambda: (n := counted_lines(pod.pmctl("logs", "ticker").stdout)) and n[-1] > n[0] + 60 and n,
                    timeout=20, what="lines written after the restart")
    # Every line, before, during and after the restart, exactly once, in order.
    assert seen == list(range(seen[0], seen[-1] + 1)), [x for x in seen if x not in range(seen[0], seen[-1] + 1)]
    assert seen[0] == 0
    assert pod.status("ticker")["state"] == "running"


def main_pid(pod, unit):
    return int(pod.nsenter("systemctl", "show", "-p", "MainPID", "--value", unit).stdout.strip())


def kill_and_wait(pod, unit):
    """SIGKILL to unit's main process (by PID), then its restart."""
    old = main_pid(pod, unit)
    pod.nsenter("kill", "-9", str(old))
    wait_for(lambda: main_pid(pod, unit) not in (0, old) and
             pod.nsenter("systemctl", "is-active", unit, check=False).stdout.strip() == "active",
             timeout=15, what=f"{unit} back")


def test_streams_survive_the_keeper_dying_then_the_daemon(pod):
    """The keeper gets a copy of every open stream again when it comes back,
    so the daemon's restart after it loses nothing either."""
    pod.run("ticker", "/bin/sh", "-c", "i=0; while true; do echo n $i; i=$((i+1)); sleep 0.05; done")
    wait_for(lambda: len(counted_lines(pod.pmctl("logs", "ticker").stdout)) >= 10, what="the first lines")
    kill_and_wait(pod, "pm-logkeep.service")
    # The daemon notices, and hands the new keeper its streams.
    wait_for(lambda: "log keeper back" in pod.nsenter("journalctl", "-u", "pm-logd.service", "--no-pager").stdout,
             timeout=15, what="the daemon to reach the new keeper")
    kill_and_wait(pod, "pm-logd.service")
    seen = wait_for(lambda: (n := counted_lines(pod.pmctl("logs", "ticker").stdout)) and n[-1] > n[0] + 80 and n,
                    timeout=20, what="lines written after both restarts")
    assert seen == list(range(seen[0], seen[-1] + 1)), [x for x in seen if x not in range(seen[0], seen[-1] + 1)]
    assert seen[0] == 0
    # And systemd's own fd store, whose every new fd costs PID 1 a compare
    # with each it holds, is not used.
    assert pod.nsenter("systemctl", "show", "-p", "NFileDescriptorStore", "--value",
                       "pm-logd.service").stdout.strip() == "0"


def fd_count(pod, pid):
    return len(pod.nsenter("ls", f"/proc/{pid}/fd").stdout.split())


def test_the_keeper_lets_go_the_streams_of_an_app_removed_while_the_daemon_is_down(pod):
    pod.run("gone", "/bin/sh", "-c", "while true; do echo x; sleep 0.1; done")
    wait_for(lambda: "x\n" in pod.pmctl("logs", "gone").stdout, what="a line")
    keeper = main_pid(pod, "pm-logkeep.service")
    with_app = fd_count(pod, keeper)
    pod.nsenter("systemctl", "stop", "pm-logd.service")
    try:
        pod.pmctl("rm", "-f", "gone")
    finally:
        pod.nsenter("systemctl", "start", "pm-logd.service")
    # The restarted daemon finds no app for them, and has the keeper close
    # both (stdout and stderr).
    wait_for(lambda: fd_count(pod, keeper) == with_app - 2, what="the keeper to let the two streams go")
    assert main_pid(pod, "pm-logkeep.service") == keeper


def test_the_keeper_shrugs_off_garbage_and_keeps_serving(pod):
    """Malformed, oversize and fd-less requests on its socket change nothing:
    it stays up, answers "give", and the streams it holds go on."""
    pod.run("steady", "/bin/sh", "-c", "i=0; while true; do echo n $i; i=$((i+1)); sleep 0.05; done")
    wait_for(lambda: len(counted_lines(pod.pmctl("logs", "steady").stdout)) >= 5, what="the first lines")
    keeper = main_pid(pod, "pm-logkeep.service")
    path = str(pod.path("/run/podmutatord/logkeep.sock"))
    # An empty message reads like the end: that connection is closed.
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
        s.settimeout(5)
        s.connect(path)
        s.send(b"")
        assert s.recv(16) == b""
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
        s.settimeout(5)
        s.connect(path)
        for junk in (b"\xff\x00garbage", b"keep " + b"a" * 5000, b"keep no-fd-here", b"keep ../../x",
                     b"drop " + b"b" * 200, b"give me everything", b"drop"):
            s.send(junk)
        s.send(b"give")
        # Its answer ends with "end"; what it gives back is the daemon's,
        # and is let go again when this socket closes.
        while True:
            msg, fds, _, _ = socket.recv_fds(s, 256, 4)
            for fd in fds:
                socket.close(fd)
            if msg == b"end":
                break
    assert main_pid(pod, "pm-logkeep.service") == keeper
    # The daemon and the keeper still work together: a restart of the
    # daemon loses no line.
    kill_and_wait(pod, "pm-logd.service")
    seen = wait_for(lambda: (n := counted_lines(pod.pmctl("logs", "steady").stdout)) and n[-1] > n[0] + 40 and n,
                    timeout=20, what="lines after the daemon's restart")
    assert seen == list(range(seen[0], seen[-1] + 1))


def test_inject_while_the_log_daemon_is_down_is_refused_and_changes_nothing(pod):
    pod.nsenter("systemctl", "stop", "pm-logd.service")
    try:
        r = pod.pmctl("run", "--name", "orphan", "--", "/bin/echo", "hi", check=False)
        assert r.returncode == 3, (r.returncode, r.stderr)
        assert "log daemon" in r.stderr
        assert pod.json("ls") == []
        assert pod.app_unit_files() == []
    finally:
        pod.nsenter("systemctl", "start", "pm-logd.service")
    # Once it is back, apps run and log again.
    pod.run("back", "/bin/echo", "logged again")
    pod.wait_state("back", "exited")
    wait_for(lambda: pod.pmctl("logs", "back").stdout == "logged again\n", what="the line of the app")


def test_the_chatty_example_logs_both_streams_into_a_cri_file(pod):
    pod.pmctl("inject", "-f", str(REPO / "examples" / "chatty.json"), "--start")
    wait_for(lambda: "warning 1\n" in pod.pmctl("logs", "--stream", "stderr", "chatty").stderr,
             timeout=15, what="two warnings")
    out = pod.pmctl("logs", "--stream", "stdout", "chatty").stdout
    assert out.startswith("line 0\nline 1\n"), out
    lines = pod.path("/var/log/default/chatty.log").read_text().splitlines()
    assert any(x.endswith(" stdout F line 0") for x in lines), lines
    assert any(x.endswith(" stderr F warning 0") for x in lines), lines
