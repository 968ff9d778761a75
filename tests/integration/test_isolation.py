"""Isolation of apps: profiles, resources, mounts, networks, and Inspect.

Every claim is checked from inside an app (what /proc/self/status, the
mounts and the network look like to it) or read back from the pod's
systemd, not from the unit file alone. Apps write what they see into a
directory of the pod that the test reads from the node."""

import json
import re
import time

import pytest

from conftest import REPO, wait_for

# CAP_* numbers of the unprivileged profile's bounding set.
UNPRIVILEGED_CAPS = {"CHOWN": 0, "DAC_OVERRIDE": 1, "FOWNER": 3, "FSETID": 4, "KILL": 5, "SETGID": 6,
                     "SETUID": 7, "SETPCAP": 8, "NET_BIND_SERVICE": 10, "NET_RAW": 13,
                     "AUDIT_WRITE": 29, "SETFCAP": 31}
CAP_MKNOD, CAP_SYS_ADMIN, CAP_SYS_RAWIO, CAP_NET_ADMIN = 27, 21, 17, 12


def mask(*bits):
    return sum(1 << b for b in bits)


def inject(pod, spec, start=True, check=True):
    args = ["inject", "-f", "-"] + (["--start"] if start else [])
    return pod.pmctl(*args, input=json.dumps(spec), check=check)


def out_dir(pod):
    pod.nsenter("mkdir", "-p", "/srv/out")


def read_out(pod, name, timeout=10):
    """What an app wrote into /srv/out/NAME, once it wrote "END"."""
    path = pod.path(f"/srv/out/{name}")
    wait_for(lambda: path.exists() and "END" in path.read_text(), timeout=timeout,
             what=f"the app's report {name}")
    return path.read_text()


def status_field(text, key):
    m = re.search(rf"^{key}:\s*(\S+)", text, re.M)
    assert m, f"{key} not in:\n{text}"
    return m.group(1)


def shell_app(name, script, **spec):
    return dict({"name": name, "argv": ["/bin/sh", "-c", script]}, **spec)


def systemd_props(pod, app, *props):
    unit = pod.status(app)["unit"]
    r = pod.nsenter("systemctl", "show", unit, *[f"-p{p}" for p in props])
    return dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)


def make_busybox_root(pod, root):
    pod.nsenter("sh", "-c", f"mkdir -p {root}/bin {root}/dev {root}/proc {root}/sys {root}/tmp {root}/run"
                f" {root}/etc && cp /bin/busybox {root}/bin/busybox")


# -- profiles ---------------------------------------------------------------

PROBE = ("grep -E '^(CapBnd|CapEff|NoNewPrivs)' /proc/self/status > /srv/out/{n};"
         " mknod /srv/out/{n}.blk b 8 0 2>/dev/null; echo mknod_block=$? >> /srv/out/{n};"
         " mknod /srv/out/{n}.chr c 1 3 2>/dev/null; echo mknod_char=$? >> /srv/out/{n};"
         " ls /dev > /srv/out/{n}.dev; echo END >> /srv/out/{n}")


def test_unprivileged_profile_has_reduced_capabilities_no_devices_and_no_new_privileges(pod):
    out_dir(pod)
    inject(pod, shell_app("plain", PROBE.format(n="plain")))
    text = read_out(pod, "plain")
    assert int(status_field(text, "CapBnd"), 16) == mask(*UNPRIVILEGED_CAPS.values())
    assert int(status_field(text, "CapEff"), 16) & mask(CAP_MKNOD, CAP_SYS_ADMIN, CAP_SYS_RAWIO) == 0
    assert status_field(text, "NoNewPrivs") == "1"
    assert "mknod_block=0" not in text and "mknod_char=0" not in text, text
    assert not pod.path("/srv/out/plain.blk").exists()
    # Only the pseudo devices: no block devices, no console, no /dev/net.
    devices = set(pod.path("/srv/out/plain.dev").read_text().split())
    assert {"null", "zero", "urandom"} <= devices
    assert not devices & {"console", "net", "sda", "vda", "kmsg"}, devices


MOUNT_FLAGS = ("while read -r a b c d mp opts rest; do case $mp in /proc/sys|/sys|/sys/fs/cgroup)"
               " echo \"$mp=${opts%%,*}\";; esac; done < /proc/self/mountinfo")


@pytest.mark.parametrize("where", ["pod-root", "rootfs"])
def test_unprivileged_apps_see_kernel_tunables_and_the_cgroup_tree_read_only(pod, where):
    spec = {"name": "tun", "argv": ["/bin/sh", "-c", MOUNT_FLAGS]}
    if where == "rootfs":
        make_busybox_root(pod, "/srv/bbro")
        pod.nsenter("ln", "-sf", "busybox", "/srv/bbro/bin/sh")
        spec["rootfs"] = "/srv/bbro"
    inject(pod, spec)
    pod.wait_state("tun", "exited")
    out = wait_for(lambda: pod.pmctl("logs", "tun").stdout, what="the app's mount flags")
    # The last mount at each point is the one the app sees.
    flags = dict(line.split("=", 1) for line in out.splitlines())
    assert flags == {"/proc/sys": "ro", "/sys": "ro", "/sys/fs/cgroup": "ro"}, out


def test_privileged_profile_keeps_the_pods_full_set(pod):
    out_dir(pod)
    inject(pod, shell_app("priv", PROBE.format(n="priv"), profile="privileged"))
    text = read_out(pod, "priv")
    capbnd = int(status_field(text, "CapBnd"), 16)
    assert capbnd & mask(CAP_MKNOD, CAP_SYS_ADMIN, CAP_NET_ADMIN) == mask(CAP_MKNOD, CAP_SYS_ADMIN, CAP_NET_ADMIN)
    # The same set the pod's own services get.
    pod1 = pod.nsenter("grep", "CapBnd", "/proc/1/status").stdout
    assert capbnd == int(pod1.split()[1], 16)
    assert status_field(text, "NoNewPrivs") == "0"
    assert "mknod_char=0" in text, text  # CAP_MKNOD is there, /dev/null is allowed


def test_capabilities_rlimits_and_no_new_privileges_override_the_profile(pod):
    out_dir(pod)
    spec = shell_app("caps", "grep -E '^(CapBnd|NoNewPrivs)' /proc/self/status > /srv/out/caps;"
                     " echo nofile=$(ulimit -n):$(ulimit -Hn) >> /srv/out/caps; echo END >> /srv/out/caps",
                     profile="privileged", capabilities=["CAP_NET_ADMIN", "chown"], no_new_privileges=True,
                     rlimits=[{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200}])
    inject(pod, spec)
    text = read_out(pod, "caps")
    assert int(status_field(text, "CapBnd"), 16) == mask(CAP_NET_ADMIN, 0)
    assert status_field(text, "NoNewPrivs") == "1"
    assert "nofile=100:200" in text


def test_capabilities_of_a_user_other_than_root_are_ambient(pod):
    out_dir(pod)
    pod.nsenter("chmod", "1777", "/srv/out")
    inject(pod, shell_app("svc", "grep -E '^(CapEff|CapBnd)' /proc/self/status > /srv/out/svc; echo END >> /srv/out/svc",
                          user="65534", capabilities=["CAP_NET_BIND_SERVICE"]))
    text = read_out(pod, "svc")
    assert int(status_field(text, "CapEff"), 16) == mask(10)
    assert int(status_field(text, "CapBnd"), 16) == mask(10)


def test_read_only_rootfs_leaves_rw_mounts_writable(pod):
    out_dir(pod)
    pod.nsenter("mkdir", "-p", "/srv/rw")
    spec = shell_app("ro", "touch /srv/probe 2>/dev/null; echo root=$? > /out/ro; touch /out/x; echo mount=$? >> /out/ro;"
                     " echo END >> /out/ro",
                     read_only_rootfs=True, mounts=[{"source": "/srv/out", "target": "/out"}])
    inject(pod, spec)
    text = read_out(pod, "ro")
    assert "root=0" not in text and "mount=0" in text, text
    assert not pod.path("/srv/probe").exists()
    # The same inside a rootfs: "/" is the app's root there.
    make_busybox_root(pod, "/srv/tiny")
    spec = {"name": "ro-tiny", "rootfs": "/srv/tiny", "read_only_rootfs": True,
            "mounts": [{"source": "/srv/out", "target": "/out"}],
            "argv": ["/bin/busybox", "sh", "-c", "/bin/busybox touch /tmp/x 2>/dev/null; echo root=$? > /out/ro-tiny;"
                     " echo END >> /out/ro-tiny"]}
    inject(pod, spec)
    text = read_out(pod, "ro-tiny")
    assert "root=0" not in text, text
    assert not pod.path("/srv/tiny/tmp/x").exists()


# -- resources --------------------------------------------------------------

def test_resources_are_written_and_read_back_from_systemd(pod):
    pod.run("lim", "/bin/sleep", "300", opts=("--memory", "64m", "--cpus", "1.5", "--pids", "32"))
    pod.wait_state("lim", "running")
    props = systemd_props(pod, "lim", "MemoryMax", "CPUQuotaPerSecUSec", "TasksMax")
    assert props == {"MemoryMax": str(64 << 20), "CPUQuotaPerSecUSec": "1.500000s", "TasksMax": "32"}
    assert pod.json("inspect", "lim")["spec"]["resources"] == {"memory_max": 64 << 20, "cpu_millis": 1500,
                                                              "tasks_max": 32}
    # The smallest quota, and suffixes in capitals.
    pod.run("tiny", "/bin/sleep", "300", opts=("--memory", "2G", "--cpus", "0.001"))
    props = systemd_props(pod, "tiny", "MemoryMax", "CPUQuotaPerSecUSec", "TasksMax")
    assert props["MemoryMax"] == str(2 << 30) and props["CPUQuotaPerSecUSec"] == "1ms", props


def test_limits_are_enforced_where_the_pod_can(pod):
    if not pod.json("info")["limits_enforced"]:
        pytest.skip("this pod's cgroup tree has no pids/memory/cpu controllers delegated (pmctl info: "
                    "limits_enforced=false); the settings are checked by the read-back test")
    inject(pod, shell_app("pids", "for i in 1 2 3 4 5 6 7 8; do sleep 30 & done; wait",
                          resources={"tasks_max": 4}))
    pod.wait_state("pids", "running")
    time.sleep(1)
    assert int(systemd_props(pod, "pids", "TasksCurrent")["TasksCurrent"]) <= 4
    inject(pod, shell_app("hog", "head -c 256m /dev/zero | tail > /dev/null",
                          resources={"memory_max": 32 << 20}))
    st = pod.wait_state("hog", "exited", timeout=30)
    assert st["reason"] == "OOMKilled", st


# -- mounts -----------------------------------------------------------------

def test_ro_and_rw_binds_are_visible_in_the_app(pod):
    out_dir(pod)
    pod.nsenter("sh", "-c", "mkdir -p /srv/data /srv/shared '/srv/100%n' && echo hello > /srv/data/greeting"
                " && echo percent > '/srv/100%n/f'")
    spec = shell_app("binds", "cat /mnt/ro/greeting > /srv/out/binds; touch /mnt/ro/new 2>/dev/null;"
                     " echo ro_write=$? >> /srv/out/binds; echo from-app > /mnt/rw/note;"
                     " echo rw_write=$? >> /srv/out/binds; cat '/mnt/50%h/f' >> /srv/out/binds;"
                     " echo END >> /srv/out/binds",
                     mounts=[{"source": "/srv/data", "target": "/mnt/ro", "read_only": True},
                             {"source": "/srv/shared", "target": "/mnt/rw"},
                             # '%' reaches systemd as a character, not a specifier
                             {"source": "/srv/100%n", "target": "/mnt/50%h"}])
    inject(pod, spec)
    text = read_out(pod, "binds")
    assert "hello" in text and "rw_write=0" in text and "ro_write=0" not in text, text
    assert "percent" in text, text
    assert pod.path("/srv/shared/note").read_text() == "from-app\n"
    assert not pod.path("/srv/data/new").exists()


def test_symlinked_and_dotdot_targets_land_inside_the_app_root(pod):
    root = "/srv/tiny"
    out_dir(pod)
    make_busybox_root(pod, root)
    # Symlinks in the app's root that point out of it, from the pod's view.
    pod.nsenter("sh", "-c", f"mkdir -p /srv/data /srv/tiny/out && echo inside > /srv/data/marker"
                f" && ln -s /etc {root}/link-to-outside && ln -s ../../../.. {root}/up")
    spec = {"name": "linky", "rootfs": root,
            "argv": ["/bin/busybox", "sh", "-c",
                     "/bin/busybox cat /etc/marker /landed/marker > /out/r 2>&1; echo END >> /out/r"],
            "mounts": [{"source": "/srv/data", "target": "/link-to-outside", "read_only": True},
                       {"source": "/srv/data", "target": "/up/landed", "read_only": True},
                       {"source": "/srv/out", "target": "/out"}]}
    inject(pod, spec)
    text = read_out(pod, "r")
    assert text.count("inside") == 2, text
    # Both landed in the app's root; the pod's own /etc and / are untouched.
    assert pod.path(f"{root}/landed").is_dir()
    assert not pod.path("/landed").exists()
    assert not pod.path("/etc/marker").exists()
    unit = pod.path(f"/run/systemd/system/{pod.status('linky')['unit']}.d/app.conf").read_text()
    assert "BindReadOnlyPaths=/srv/data:/etc\n" in unit
    assert "BindReadOnlyPaths=/srv/data:/landed\n" in unit


def test_mount_sources_naming_the_agents_dirs_are_refused(pod):
    pod.nsenter("sh", "-c", "mkdir -p /srv && ln -sfn /run/podmutatord /srv/sneaky")
    for source in ("/run/podmutator", "/run/podmutatord/apps", "/run", "/", "/srv/sneaky"):
        r = pod.pmctl("run", "--name", "peek", "-v", f"{source}:/x", "--", "/bin/true", check=False)
        assert r.returncode == 9, (source, r.stderr)  # PERMISSION_DENIED
        assert "mounts[0].source" in r.stderr and "agent" in r.stderr, r.stderr
    r = pod.pmctl("run", "--name", "peek", "-v", "/srv/none-such:/x", "--", "/bin/true", check=False)
    assert r.returncode == 5 and "mounts[0].source" in r.stderr, r.stderr
    assert pod.json("ls") == []


def test_unprivileged_apps_cannot_mount_devices_or_kernel_file_systems(pod):
    pod.nsenter("sh", "-c", "mkdir -p /srv && ln -sfn /dev/net /srv/devlink")
    for source in ("/dev", "/dev/net/tun", "/srv/devlink", "/proc/sys", "/sys/fs/cgroup"):
        r = pod.pmctl("run", "--name", "dev", "-v", f"{source}:/x", "--", "/bin/true", check=False)
        assert r.returncode == 9 and "unprivileged profile" in r.stderr, (source, r.stderr)
    assert pod.json("ls") == []
    # The privileged profile may.
    pod.run("dev", "/bin/true", opts=("--profile", "privileged", "-v", "/dev/net:/x"))


def test_dangling_symlink_targets_are_refused(pod):
    root = "/srv/tiny"
    make_busybox_root(pod, root)
    pod.nsenter("sh", "-c", f"mkdir -p /srv/data && ln -s /nowhere/at/all {root}/dangling")
    spec = {"name": "dangle", "rootfs": root, "argv": ["/bin/busybox", "true"],
            "mounts": [{"source": "/srv/data", "target": "/dangling"}]}
    r = inject(pod, spec, check=False)
    assert r.returncode == 5 and "mounts[0].target" in r.stderr and "symlink" in r.stderr, r.stderr
    assert not pod.path("/nowhere").exists()


# -- network ----------------------------------------------------------------

NET_PROBE = ("readlink /proc/self/ns/net > /srv/out/{n}; cut -d: -f1 /proc/net/dev | tail -n +3 | tr -d ' '"
             " | sort >> /srv/out/{n}; echo END >> /srv/out/{n}; exec sleep 300")


def netns_and_links(text):
    lines = [l for l in text.splitlines() if l and l != "END"]
    return lines[0], sorted(lines[1:])


def test_network_none_has_only_loopback_and_exec_joins_it(pod):
    out_dir(pod)
    inject(pod, shell_app("alone", NET_PROBE.format(n="alone"), network={"mode": "none"}))
    ns, links = netns_and_links(read_out(pod, "alone"))
    assert links == ["lo"]
    pod_ns = pod.nsenter("readlink", "/proc/1/ns/net").stdout.strip()
    assert ns != pod_ns
    # A command run in the app sees the app's namespace, not a new one.
    r = pod.pmctl("exec", "alone", "--", "readlink", "/proc/self/ns/net")
    assert r.stdout.strip() == ns


def test_network_pod_is_shared_by_apps(pod):
    out_dir(pod)
    inject(pod, shell_app("one", NET_PROBE.format(n="one")))
    inject(pod, shell_app("two", NET_PROBE.format(n="two"), network={"mode": "host"}))
    one, two = netns_and_links(read_out(pod, "one")), netns_and_links(read_out(pod, "two"))
    assert one == two
    assert one[0] == pod.nsenter("readlink", "/proc/1/ns/net").stdout.strip()


def test_network_netns_joins_a_namespace_made_in_the_pod(pod):
    out_dir(pod)
    pod.nsenter("ip", "netns", "add", "blue")
    want = pod.nsenter("ip", "netns", "exec", "blue", "readlink", "/proc/self/ns/net").stdout.strip()
    pod.run("blue", "/bin/sh", "-c", NET_PROBE.format(n="blue"), opts=("--network", "netns:/run/netns/blue"))
    ns, links = netns_and_links(read_out(pod, "blue"))
    assert ns == want and links == ["lo"]
    assert ns != pod.nsenter("readlink", "/proc/1/ns/net").stdout.strip()
    r = pod.pmctl("exec", "blue", "--", "readlink", "/proc/self/ns/net")
    assert r.stdout.strip() == want
    # A path that is no network namespace is refused before anything is made.
    r = pod.pmctl("run", "--name", "nons", "--network", "netns:/etc/hostname", "--", "/bin/true", check=False)
    assert r.returncode == 5 and "network.netns_path" in r.stderr, r.stderr
    assert [a["name"] for a in pod.json("ls")] == ["blue"]


# -- inspect and bad input ---------------------------------------------------

def test_inspect_returns_the_spec_as_injected(pod):
    pod.nsenter("mkdir", "-p", "/srv/data")
    spec = {"name": "full", "namespace": "team", "argv": ["/bin/sleep", "300"], "env": {"A": "b"},
            "profile": "privileged", "resources": {"memory_max": 1 << 30, "cpu_millis": 250, "tasks_max": 64},
            "mounts": [{"source": "/srv/data", "target": "/data", "read_only": True}],
            "network": {"mode": "none", "netns_path": ""}, "capabilities": ["CAP_CHOWN"],
            "no_new_privileges": True, "rlimits": [{"type": "nofile", "soft": 10, "hard": 20}],
            "read_only_rootfs": True, "labels": {"k": "v"}}
    inject(pod, spec, start=False)
    got = pod.json("inspect", "--ns", "team", "full")
    assert got["status"]["name"] == "full" and got["status"]["state"] == "created"
    for key, value in spec.items():
        assert got["spec"][key] == value, key
    text = pod.pmctl("inspect", "--ns", "team", "full").stdout
    assert re.search(r"^Profile:\s+privileged$", text, re.M)
    assert re.search(r"^Mounts:\s+/srv/data -> /data \(ro\)$", text, re.M)
    assert re.search(r"^CPUs:\s+0\.250$", text, re.M)
    r = pod.pmctl("inspect", "nope", check=False)
    assert r.returncode == 4


BAD_RUN_FLAGS = [
    (["--memory", "-1"], 2, "--memory"),
    (["--memory", "99999999999999999999g"], 2, "--memory"),
    (["--memory", "1.5g"], 2, "--memory"),
    (["--memory", "1k"], 5, "resources.memory_max"),
    (["--cpus", "-1"], 2, "--cpus"),
    (["--cpus", "2000"], 5, "resources.cpu_millis"),
    (["--pids", "0"], 2, "--pids"),
    (["--profile", "root"], 2, "--profile"),
    (["-v", "data:/x"], 5, "mounts[0].source"),
    (["-v", "/srv:x"], 5, "mounts[0].target"),
    (["-v", "/a:/b:/c"], 2, "-v"),
    (["-v", "/srv:/x:rx"], 2, "-v"),
    (["-v", "/srv:/x/../../y"], 5, "mounts[0].target: must be an absolute path without \"..\""),
    (["-v", "/srv:/a", "-v", "/srv:/a/../b"], 5, "mounts[1].target"),
    (["-v", "/srv:/"], 5, "mounts[0].target"),
    (["--network", "bridge"], 2, "--network"),
    (["--network", "netns:relative"], 2, "--network"),
]


def test_bad_run_flags_are_refused_and_change_nothing(pod):
    # One pod for all cases: each must leave it as it was.
    for flags, code, message in BAD_RUN_FLAGS:
        r = pod.pmctl("run", "--name", "bad", *flags, "--", "/bin/true", check=False)
        assert (r.returncode, message in r.stderr) == (code, True), (flags, r.stderr)
    assert pod.json("ls") == []
    assert pod.app_unit_files() == []


BAD_SPECS = [
    ({"rlimits": [{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]}, "rlimits[0].type"),
    ({"rlimits": [{"type": "nofile", "soft": 9, "hard": 1}]}, "rlimits[0]: soft limit"),
    ({"capabilities": ["CAP_WIZARD"]}, "capabilities[0]"),
    ({"hostname": "web"}, "hostname: an app's own hostname is not supported"),
    ({"mounts": [{"source": "/srv:x", "target": "/x"}]}, "mounts[0].source"),
    ({"mounts": [{"source": "/srv", "target": "/x y"}]}, "mounts[0].target"),
    ({"network": {"mode": "netns"}}, "network.netns_path: missing"),
    ({"network": {"mode": "pod", "netns_path": "/run/netns/x"}}, "network.netns_path: only with mode"),
    ({"resources": {"memory_max": 1 << 60}}, "resources.memory_max"),
]


def test_bad_specs_are_refused_and_change_nothing(pod):
    for fields, message in BAD_SPECS:
        r = inject(pod, dict({"name": "bad", "argv": ["/bin/true"]}, **fields), check=False)
        assert (r.returncode, message in r.stderr) == (5, True), (fields, r.stderr)
    assert pod.json("ls") == []
    assert pod.app_unit_files() == []


def test_run_once_gets_its_network_and_refuses_what_it_cannot_apply(pod):
    r = pod.pmctl("run", "--rm", "--network", "none", "--", "/bin/cat", "/proc/net/dev")
    links = sorted(line.split(":")[0].strip() for line in r.stdout.splitlines()[2:])
    assert links == ["lo"], r.stdout
    pod.nsenter("mkdir", "-p", "/srv/data")
    r = pod.pmctl("run", "--rm", "-v", "/srv/data:/x", "--", "/bin/true", check=False)
    assert r.returncode == 7 and "mounts: a run once does not apply it" in r.stderr, r.stderr
    r = pod.pmctl("run", "--rm", "--memory", "64m", "--", "/bin/true", check=False)
    assert r.returncode == 7 and "resources" in r.stderr, r.stderr


def test_the_isolated_example_runs_as_documented(pod):
    example = REPO / "examples" / "isolated.json"
    pod.pmctl("inject", "-f", str(example), "--start")
    pod.wait_state("isolated", "running")
    wait_for(lambda: pod.path("/var/tmp/isolated.log").exists(), what="the example's log line")
    want, got = json.loads(example.read_text()), pod.json("inspect", "isolated")["spec"]
    for key in ("argv", "profile", "resources", "rlimits", "read_only_rootfs"):
        assert got[key] == want[key], key
    assert got["network"]["mode"] == "none" and got["mounts"][0]["target"] == "/scratch"
