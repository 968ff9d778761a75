"""pm-stage1 prepare --image and pm-stage1 cache, against real pods: OCI
image layouts made by ocigen.py, unpacked through a layer cache that each
test keeps in its own directory (PM_CACHE_ROOT)."""

import json
import os
import stat
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from conftest import STAGE1
from ocigen import Image, Layer, busybox_layer, write_layout, write_tar

APPS = "var/lib/podmutator-apps"


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "cache"


def prepare(pod, cache, image, *args, check=True):
    env = dict(pod.env, PM_CACHE_ROOT=str(cache))
    r = subprocess.run([str(STAGE1), "prepare", "--pod", pod.name, "--image", str(image), *args],
                       env=env, capture_output=True, text=True, timeout=120)
    if check:
        assert r.returncode == 0, f"prepare failed:\n{r.stdout}\n{r.stderr}"
    return r


def cache_cmd(pod, cache, *args, check=True):
    env = dict(pod.env, PM_CACHE_ROOT=str(cache))
    r = subprocess.run([str(STAGE1), "cache", *args], env=env, capture_output=True, text=True, timeout=60)
    if check:
        assert r.returncode == 0, f"cache {args} failed:\n{r.stdout}\n{r.stderr}"
    return r


def apps_dir(pod):
    return pod.state_root / pod.name / "root" / APPS


def rootfs(pod, name):
    """The app's rootfs as the pod sees it (an overlay mounted in the pod's
    mount namespace, or a copy)."""
    return pod.path(f"/{APPS}/{name}/rootfs")


def cache_entries(cache):
    layers = cache / "layers"
    return sorted(p.name for p in layers.iterdir()) if layers.exists() else []


# -- stacking layers ---------------------------------------------------------

@pytest.mark.parametrize("mode", ["overlay", "copy"])
def test_layers_stack_with_whiteouts_opaque_dirs_links_and_metadata(pod, cache, tmp_path, mode):
    base = busybox_layer()
    base.dir("data").file("data/x", b"x").file("data/y", b"y").file("etc/a.conf", b"a").file("etc/b.conf", b"b")
    base.dir("keep").file("keep/z", b"z")
    mid = Layer().dir("data").opaque("data").file("data/new", b"new").dir("etc").whiteout("etc/a.conf")
    mid.file("f", b"linked", mode=0o640, uid=1234, gid=5678, mtime=1234567890).hardlink("g", "f")
    mid.symlink("s", "/bin/busybox")
    # a whiteout hides lower layers only: c.conf of this same layer stays
    top = Layer(compression=None).dir("etc").file("etc/c.conf", b"c").whiteout("etc/c.conf")
    top.whiteout("keep")
    write_layout(tmp_path / "img", [Image([base, mid, top], config={"Cmd": ["/bin/true"]})])

    out = prepare(pod, cache, tmp_path / "img", "--name", "stack", *(["--copy"] if mode == "copy" else [])).stdout.strip()
    root = rootfs(pod, "stack")
    assert out == str(apps_dir(pod) / "stack" / "spec.json")
    assert sorted(p.name for p in (root / "data").iterdir()) == ["new"]
    assert not (root / "etc/a.conf").exists()
    assert (root / "etc/b.conf").read_bytes() == b"b"
    assert (root / "etc/c.conf").read_bytes() == b"c"
    assert not (root / "keep").exists()
    assert not list(root.rglob(".wh.*"))
    f, g = (root / "f").stat(), (root / "g").stat()
    assert f.st_ino == g.st_ino and f.st_nlink == 2
    assert (stat.S_IMODE(f.st_mode), f.st_uid, f.st_gid, int(f.st_mtime)) == (0o640, 1234, 5678, 1234567890)
    assert os.readlink(root / "s") == "/bin/busybox"
    assert stat.S_IMODE((root / "tmp").stat().st_mode) == 0o1777
    assert (root / "bin/busybox").stat().st_mode & 0o111


def test_app_runs_with_entrypoint_env_workdir_and_user_of_its_image(pod, cache, tmp_path):
    base = busybox_layer(users={"app": 1000})
    base.dir("work", mode=0o777).dir("out", mode=0o777)
    config = {
        "Entrypoint": ["/bin/sh", "-c"],
        "Cmd": ["echo \"$GREETING\" > /out/greeting; id -u > /out/uid; id -g > /out/gid; pwd > /out/pwd"],
        "Env": ["GREETING=hello from the image", "PATH=/bin"],
        "WorkingDir": "/work",
        "User": "app",
        "StopSignal": "SIGINT",
    }
    write_layout(tmp_path / "img", [Image([base], config=config)])

    app_id = prepare(pod, cache, tmp_path / "img", "--name", "hello", "--inject").stdout.strip()
    spec = json.loads((apps_dir(pod) / "hello" / "spec.json").read_text())
    assert spec["argv"] == config["Entrypoint"] + config["Cmd"]
    assert spec["env"] == {"GREETING": "hello from the image", "PATH": "/bin"}
    assert (spec["user"], spec["group"], spec["working_dir"]) == ("1000", "1000", "/work")
    assert spec["stop_signal"] == "SIGINT"
    assert spec["rootfs"] == "/" + APPS + "/hello/rootfs"

    assert pod.status(app_id)["state"] == "created"
    pod.pmctl("start", app_id)
    st = pod.wait_state(app_id, "exited")
    assert st["exit_code"] == 0, st
    out = rootfs(pod, "hello") / "out"
    assert (out / "greeting").read_text() == "hello from the image\n"
    assert (out / "uid").read_text() == "1000\n"
    assert (out / "gid").read_text() == "1000\n"
    assert (out / "pwd").read_text() == "/work\n"


def test_inject_start_runs_the_app_at_once(pod, cache, tmp_path):
    base = busybox_layer().dir("out", mode=0o777)
    write_layout(tmp_path / "img", [Image([base], config={"Cmd": ["/bin/sh", "-c", "echo ran > /out/ran"]})])
    app_id = prepare(pod, cache, tmp_path / "img", "--name", "now", "--inject", "--start").stdout.strip()
    pod.wait_state(app_id, "exited")
    assert (rootfs(pod, "now") / "out/ran").read_text() == "ran\n"


def test_numeric_user_and_group_names_resolve_in_the_image(pod, cache, tmp_path):
    base = busybox_layer(users={"app": 1000, "staff": 50})
    write_layout(tmp_path / "a", [Image([base], config={"Cmd": ["/bin/true"], "User": "app:staff"})])
    write_layout(tmp_path / "b", [Image([base], config={"Cmd": ["/bin/true"], "User": "4242"})])
    write_layout(tmp_path / "c", [Image([base], config={"Cmd": ["/bin/true"], "User": "nobody"})])
    prepare(pod, cache, tmp_path / "a", "--name", "a")
    prepare(pod, cache, tmp_path / "b", "--name", "b")
    spec = lambda n: json.loads((apps_dir(pod) / n / "spec.json").read_text())
    assert (spec("a")["user"], spec("a")["group"]) == ("1000", "50")
    assert (spec("b")["user"], spec("b")["group"]) == ("4242", "0")
    r = prepare(pod, cache, tmp_path / "c", "--name", "c", check=False)
    assert r.returncode == 1 and "nobody" in r.stderr and "/etc/passwd" in r.stderr
    assert not (apps_dir(pod) / "c").exists()


def test_tar_of_a_layout_and_tag_selection(pod, cache, tmp_path):
    base = busybox_layer()
    v1 = Image([base, Layer().file("version", b"1")], config={"Cmd": ["/bin/true"]}, tag="v1")
    v2 = Image([base, Layer().file("version", b"2")], config={"Cmd": ["/bin/true"]}, tag="v2")
    write_layout(tmp_path / "img", [v1, v2])
    tar = write_tar(tmp_path / "img", tmp_path / "img.tar")

    prepare(pod, cache, f"{tar}:v2", "--name", "two")
    prepare(pod, cache, f"{tmp_path / 'img'}:v1", "--name", "one")
    assert (rootfs(pod, "two") / "version").read_bytes() == b"2"
    assert (rootfs(pod, "one") / "version").read_bytes() == b"1"

    r = prepare(pod, cache, tar, "--name", "none", check=False)
    assert r.returncode == 1 and "2 manifests" in r.stderr and ":TAG" in r.stderr
    r = prepare(pod, cache, f"{tar}:v3", "--name", "none", check=False)
    assert r.returncode == 1 and "no manifest is tagged v3" in r.stderr
    assert not (apps_dir(pod) / "none").exists()
    # the scratch copy of the tar is gone
    assert list((cache / "tmp").iterdir()) == []


def test_default_name_comes_from_the_layout_and_names_are_not_reused(pod, cache, tmp_path):
    write_layout(tmp_path / "My_Image", [Image([busybox_layer()], config={"Cmd": ["/bin/true"]})])
    prepare(pod, cache, tmp_path / "My_Image")
    assert (apps_dir(pod) / "my-image" / "spec.json").exists()
    r = prepare(pod, cache, tmp_path / "My_Image", check=False)
    assert r.returncode == 1 and "already prepared" in r.stderr


def test_prepare_needs_a_running_pod(new_pod, cache, tmp_path):
    p = new_pod()
    write_layout(tmp_path / "img", [Image([busybox_layer()], config={"Cmd": ["/bin/true"]})])
    r = prepare(p, cache, tmp_path / "img", check=False)
    assert r.returncode == 1 and f"no such pod: {p.name}" in r.stderr


# -- hostile images ------------------------------------------------------------

def _escape(kind, outside):
    base = busybox_layer()
    bad = Layer()
    extra = []
    if kind == "dotdot":
        bad.file("../../../../../../../../" + str(outside / "pwned").lstrip("/"), b"x")
    elif kind == "absolute":
        bad.file(str(outside / "pwned"), b"x")
    elif kind == "symlink-absolute":
        bad.symlink("esc", str(outside)).file("esc/pwned", b"x")
    elif kind == "symlink-climbing":
        bad.symlink("esc", "../../../../../../../../.." + str(outside)).file("esc/pwned", b"x")
    elif kind == "hardlink-dotdot":
        bad.hardlink("h", "../../../../../../../../" + str(outside / "victim").lstrip("/"))
    elif kind == "hardlink-absolute":
        bad.hardlink("h", str(outside / "victim"))
    elif kind == "hardlink-through-symlink":
        bad.symlink("esc", str(outside)).hardlink("h", "esc/victim")
    elif kind == "device":
        bad.device("dev/mem", 1, 1)
    elif kind == "digest-mismatch":
        bad.file("f", b"honest")
        bad.blob_edit = lambda b: b[:-9] + bytes([b[-9] ^ 1]) + b[-8:]
        extra.append("keep-name")
    elif kind == "size-mismatch":
        bad.file("f", b"honest")
        bad.declare_size = 1
    elif kind == "truncated-gzip":
        bad.file("f", os.urandom(200000))
        bad.blob_edit = lambda b: b[: len(b) // 2]
    elif kind == "diff-id-mismatch":
        bad.file("f", b"honest")
        bad.declare_diff_id = "sha256:" + "0" * 64
    return base, bad, extra


EXPECTED = {
    "dotdot": "escapes the root",
    "absolute": "escapes the root",
    "symlink-absolute": "cannot be resolved inside the rootfs",
    "symlink-climbing": "cannot be resolved inside the rootfs",
    "hardlink-dotdot": "outside the layer",
    "hardlink-absolute": "outside the layer",
    "hardlink-through-symlink": "not a file of this layer",
    "device": "device node",
    "digest-mismatch": "digest mismatch",
    "size-mismatch": "size mismatch",
    "truncated-gzip": "layer sha256:",
    "diff-id-mismatch": "diff_id",
}


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_hostile_layer_fails_and_leaves_nothing(pod, cache, tmp_path, kind):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_text("victim")
    base, bad, extra = _escape(kind, outside)
    infos = write_layout(tmp_path / "img", [Image([base, bad], config={"Cmd": ["/bin/true"]})])
    if "keep-name" in extra:
        # the edited blob still carries the digest of the honest one
        d, _ = infos[0]["layers"][1]
        blobs = tmp_path / "img/blobs/sha256"
        honest = Layer().file("f", b"honest").build()[0]
        from ocigen import sha256
        os.rename(blobs / sha256(bad.build()[0]), blobs / sha256(honest))
        manifest_fix(tmp_path / "img", sha256(bad.build()[0]), sha256(honest))

    r = prepare(pod, cache, tmp_path / "img", "--name", "bad", check=False)
    assert r.returncode == 1, r.stdout
    assert EXPECTED[kind] in r.stderr, r.stderr
    if kind not in ("device",):
        assert "sha256:" in r.stderr  # the blob is named
    assert sorted(p.name for p in outside.iterdir()) == ["victim"]
    assert (outside / "victim").read_text() == "victim"
    assert os.stat(outside / "victim").st_nlink == 1
    assert not apps_dir(pod).exists() or list(apps_dir(pod).iterdir()) == []
    bad_diff_id = infos[0]["layers"][1][1].split(":")[1]
    assert bad_diff_id not in cache_entries(cache)
    assert not [e for e in cache_entries(cache) if ".tmp-" in e]


def manifest_fix(layout, old, new):
    """Rewrites the manifest so its layer descriptor names blob new instead
    of old, and the index so it names the rewritten manifest."""
    from ocigen import sha256
    index = json.loads((layout / "index.json").read_text())
    mdesc = index["manifests"][0]
    mpath = layout / "blobs/sha256" / mdesc["digest"].split(":")[1]
    mdata = mpath.read_text().replace(old, new).encode()
    mpath.unlink()
    (layout / "blobs/sha256" / sha256(mdata)).write_bytes(mdata)
    mdesc.update(digest="sha256:" + sha256(mdata), size=len(mdata))
    (layout / "index.json").write_text(json.dumps(index))


def test_devices_are_accepted_when_allowed(pod, cache, tmp_path):
    write_layout(tmp_path / "img", [Image([busybox_layer(), Layer().dir("dev").device("dev/null", 1, 3)],
                                          config={"Cmd": ["/bin/true"]})])
    prepare(pod, cache, tmp_path / "img", "--name", "dev", "--allow-devices")
    st = (rootfs(pod, "dev") / "dev/null").stat()
    assert stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == 1 and os.minor(st.st_rdev) == 3
    # the cached layer holds the device; without the option it is still refused
    r = prepare(pod, cache, tmp_path / "img", "--name", "dev2", check=False)
    assert r.returncode == 1 and "device node" in r.stderr


def test_corrupt_manifest_and_config_blobs_are_named(pod, cache, tmp_path):
    infos = write_layout(tmp_path / "img", [Image([busybox_layer()], config={"Cmd": ["/bin/true"]})])
    cpath = tmp_path / "img/blobs/sha256" / infos[0]["config"].split(":")[1]
    data = bytearray(cpath.read_bytes())
    data[5] ^= 1
    cpath.write_bytes(bytes(data))
    r = prepare(pod, cache, tmp_path / "img", "--name", "c", check=False)
    assert r.returncode == 1 and f"config blob {infos[0]['config']}" in r.stderr and "digest mismatch" in r.stderr
    assert cache_entries(cache) == []


# -- the cache -------------------------------------------------------------

def test_second_prepare_uses_the_cache_without_reading_layer_blobs(pod, cache, tmp_path):
    infos = write_layout(tmp_path / "img", [Image([busybox_layer(), Layer().file("f", os.urandom(1 << 20))],
                                                  config={"Cmd": ["/bin/true"]})])
    t0 = time.monotonic()
    prepare(pod, cache, tmp_path / "img", "--name", "first")
    cold = time.monotonic() - t0
    entries = cache_entries(cache)
    assert len(entries) == 2
    inodes = {e: (cache / "layers" / e).stat().st_ino for e in entries}
    # the layer blobs are no longer needed: the verified config pins diff_ids
    for digest, _ in infos[0]["layers"]:
        (tmp_path / "img/blobs/sha256" / digest.split(":")[1]).write_bytes(b"gone")
    t0 = time.monotonic()
    prepare(pod, cache, tmp_path / "img", "--name", "second")
    warm = time.monotonic() - t0
    assert {e: (cache / "layers" / e).stat().st_ino for e in cache_entries(cache)} == inodes
    assert (rootfs(pod, "second") / "f").read_bytes() == (rootfs(pod, "first") / "f").read_bytes()
    assert warm < cold, (cold, warm)


def test_a_layer_shared_by_two_images_is_unpacked_once(pod, cache, tmp_path):
    base = busybox_layer()
    write_layout(tmp_path / "a", [Image([base, Layer().file("a", b"a")], config={"Cmd": ["/bin/true"]})])
    write_layout(tmp_path / "b", [Image([base, Layer().file("b", b"b")], config={"Cmd": ["/bin/true"]})])
    prepare(pod, cache, tmp_path / "a", "--name", "a")
    first = {e: (cache / "layers" / e).stat().st_ino for e in cache_entries(cache)}
    prepare(pod, cache, tmp_path / "b", "--name", "b")
    after = {e: (cache / "layers" / e).stat().st_ino for e in cache_entries(cache)}
    assert len(first) == 2 and len(after) == 3
    assert all(after[e] == ino for e, ino in first.items())
    assert (rootfs(pod, "b") / "b").exists() and not (rootfs(pod, "b") / "a").exists()


@pytest.mark.parametrize("mode", ["overlay", "copy"])
def test_an_app_writing_its_rootfs_cannot_change_the_cache(pod, cache, tmp_path, mode):
    opts = ["--copy"] if mode == "copy" else []
    base = busybox_layer().file("etc/conf", b"original").file("etc/data", b"data\n")
    script = "echo poisoned > /etc/conf; echo more >> /etc/data"
    write_layout(tmp_path / "img", [Image([base], config={"Cmd": ["/bin/sh", "-c", script]})])
    app_id = prepare(pod, cache, tmp_path / "img", "--name", "w", "--inject", "--start", *opts).stdout.strip()
    pod.wait_state(app_id, "exited")
    assert (rootfs(pod, "w") / "etc/conf").read_text() == "poisoned\n"
    assert (rootfs(pod, "w") / "etc/data").read_text() == "data\nmore\n"
    if mode == "overlay":
        assert (apps_dir(pod) / "w/upper/etc/conf").read_text() == "poisoned\n"
    [tree] = [cache / "layers" / e / "tree" for e in cache_entries(cache)]
    assert (tree / "etc/conf").read_bytes() == b"original"
    assert (tree / "etc/data").read_bytes() == b"data\n"
    prepare(pod, cache, tmp_path / "img", "--name", "w2", *opts)
    assert (rootfs(pod, "w2") / "etc/conf").read_bytes() == b"original"
    assert (rootfs(pod, "w2") / "etc/data").read_bytes() == b"data\n"


def test_cache_ls_and_prune(pod, cache, tmp_path):
    base = busybox_layer()
    write_layout(tmp_path / "a", [Image([base, Layer().file("a", b"a")], config={"Cmd": ["/bin/true"]})])
    write_layout(tmp_path / "b", [Image([base, Layer().file("b", b"b")], config={"Cmd": ["/bin/true"]})])
    prepare(pod, cache, tmp_path / "a", "--name", "a")
    prepare(pod, cache, tmp_path / "b", "--name", "b")

    ls = json.loads(cache_cmd(pod, cache, "ls", "--json").stdout)
    assert sorted(e["diff_id"].split(":")[1] for e in ls) == cache_entries(cache)
    assert all(e["size"] > 0 and e["last_used"] > 0 for e in ls)
    table = cache_cmd(pod, cache, "ls").stdout.splitlines()
    assert table[0].split() == ["DIFF_ID", "SIZE", "LAST_USED"] and len(table) == 4

    # both apps' overlays need every layer: nothing goes
    assert "removed 0 of 3" in cache_cmd(pod, cache, "prune").stdout
    assert len(cache_entries(cache)) == 3
    # without app b, its own layer goes; the shared one stays
    subprocess.run(["rm", "-rf", str(apps_dir(pod) / "b")], check=True)
    assert "removed 1 of 3" in cache_cmd(pod, cache, "prune").stdout
    assert len(cache_entries(cache)) == 2
    # --all will not pull layers from under app a
    r = cache_cmd(pod, cache, "prune", "--all", check=False)
    assert r.returncode == 1 and f"{pod.name}/a" in r.stderr and "Nothing was removed" in r.stderr
    assert len(cache_entries(cache)) == 2
    assert (rootfs(pod, "a") / "bin/busybox").exists()
    # a copied rootfs needs no layer
    prepare(pod, cache, tmp_path / "b", "--name", "c", "--copy")
    subprocess.run(["rm", "-rf", str(apps_dir(pod) / "a")], check=True)
    assert "removed 3 of 3" in cache_cmd(pod, cache, "prune", "--all").stdout
    assert cache_entries(cache) == []
    assert (rootfs(pod, "c") / "b").read_bytes() == b"b"

    r = cache_cmd(pod, cache, "bogus", check=False)
    assert r.returncode == 2
