"""pm-stage1 prepare --bundle: OCI runtime bundles (config.json + rootfs)
made here, in the shape `crun spec` writes, turned into apps of a real pod."""

import json
import os
import shutil
import subprocess

import pytest

from conftest import STAGE1, wait_for

APPS = "var/lib/podmutator-apps"
APPLETS = ("sh", "echo", "cat", "pwd", "ls", "id", "sleep", "grep", "ip", "head")


def make_bundle(path, args, **overrides):
    """A bundle at path: a busybox rootfs and a config.json like `crun spec`
    writes, with args and the fields in overrides replaced."""
    rootfs = path / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    for d in ("proc", "sys", "dev", "tmp", "etc", "work"):
        (rootfs / d).mkdir()
    shutil.copy("/bin/busybox", rootfs / "bin" / "busybox")
    for applet in APPLETS:
        os.symlink("busybox", rootfs / "bin" / applet)
    caps = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID",
            "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SYS_CHROOT"]
    config = {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {k: caps for k in ("bounding", "effective", "permitted")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": False},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount")],
        },
    }
    for key, value in overrides.items():
        section, _, field = key.partition("__")
        if field:
            config.setdefault(section, {})[field] = value
        else:
            config[section] = value
    (path / "config.json").write_text(json.dumps(config))
    return path


def prepare_bundle(pod, bundle, *args, check=True):
    r = subprocess.run([str(STAGE1), "prepare", "--pod", pod.name, "--bundle", str(bundle), *args],
                       env=pod.env, capture_output=True, text=True, timeout=120)
    if check:
        assert r.returncode == 0, f"prepare --bundle failed:\n{r.stdout}\n{r.stderr}"
    return r


def app_output(pod, name, timeout=15):
    pod.wait_state(name, "exited", timeout=timeout)
    return wait_for(lambda: pod.pmctl("logs", name).stdout, timeout=10, what=f"output of {name}")


def test_bundle_runs_its_args_env_and_cwd(pod, tmp_path):
    bundle = make_bundle(tmp_path / "b", ["/bin/sh", "-c", 'echo "$GREETING"; pwd; cat /etc/marker'],
                         process__cwd="/work",
                         process__env=["PATH=/bin", "GREETING=hello from a bundle"])
    (bundle / "rootfs" / "etc" / "marker").write_text("in the bundle's root\n")
    r = prepare_bundle(pod, bundle, "--name", "bun", "--inject", "--start")
    app_id = r.stdout.strip()
    assert len(app_id) == 32, r.stdout
    assert app_output(pod, "bun") == "hello from a bundle\n/work\nin the bundle's root\n"
    st = pod.status("bun")
    assert st["exit_code"] == 0 and st["reason"] == "Completed"
    spec = json.loads((pod.state_root / pod.name / "root" / APPS / "bun" / "spec.json").read_text())
    assert spec["rootfs"] == f"/{APPS}/bun/rootfs"
    assert spec["argv"][0] == "/bin/sh"


def test_bundle_without_inject_prints_the_spec_path(pod, tmp_path):
    bundle = make_bundle(tmp_path / "b", ["/bin/echo", "hi"])
    r = prepare_bundle(pod, bundle, "--name", "plain")
    spec = r.stdout.strip()
    assert spec.endswith(f"/{APPS}/plain/spec.json") and os.path.exists(spec)
    assert pod.json("ls") == []


@pytest.mark.parametrize("override, field", [
    ({"process__terminal": True}, "process.terminal"),
    ({"hooks": {"prestart": [{"path": "/bin/true"}]}}, "hooks"),
    ({"linux__namespaces": [{"type": "user"}]}, "linux.namespaces"),
    ({"surprise": 1}, "surprise"),
])
def test_bundle_fields_that_cannot_be_honoured_are_refused_by_name(pod, tmp_path, override, field):
    bundle = make_bundle(tmp_path / "b", ["/bin/true"], **override)
    r = prepare_bundle(pod, bundle, "--name", "bad", "--inject", check=False)
    assert r.returncode != 0
    assert field in r.stderr, r.stderr
    assert not (pod.state_root / pod.name / "root" / APPS / "bad").exists()
    assert pod.json("ls") == []


def test_bundle_mount_memory_limit_and_network_none_are_honoured(pod, tmp_path):
    """The issue's bundle: args, env, cwd, a bind mount from the node, a
    memory limit and a network namespace of its own (none)."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "hello.txt").write_text("from the node\n")
    script = ("cat /data/hello.txt; echo written > /data/out.txt && echo ro=no || echo ro=yes;"
              " while read -r line; do case $line in *:*) echo \"if ${line%%:*}\";; esac; done < /proc/net/dev")
    bundle = make_bundle(tmp_path / "b", ["/bin/sh", "-c", script])
    config = json.loads((bundle / "config.json").read_text())
    config["mounts"].append({"destination": "/data", "type": "bind", "source": str(data),
                             "options": ["rbind", "ro"]})
    config["linux"]["resources"]["memory"] = {"limit": 64 * 1024 * 1024}
    config["linux"]["namespaces"].append({"type": "network"})
    (bundle / "config.json").write_text(json.dumps(config))
    prepare_bundle(pod, bundle, "--name", "iso", "--inject", "--start")
    out = app_output(pod, "iso")
    lines = out.splitlines()
    assert lines[0] == "from the node"
    assert "ro=yes" in lines, out  # the bind is read-only
    assert not (data / "out.txt").exists()
    interfaces = sorted(x.split()[1] for x in lines if x.startswith("if "))
    assert interfaces == ["lo"], out
    unit = pod.status("iso")["unit"]
    props = pod.nsenter("systemctl", "show", unit, "-p", "MemoryMax", "-p", "PrivateNetwork").stdout
    assert "MemoryMax=67108864" in props and "PrivateNetwork=yes" in props, props
    spec = json.loads(pod.pmctl("--json", "inspect", "iso").stdout)["spec"]
    assert spec["mounts"][0]["target"] == "/data" and spec["mounts"][0]["read_only"] is True
    assert spec["network"]["mode"] == "none"
