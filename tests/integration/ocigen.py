"""A small generator of OCI image layouts for the tests: real tar layers
(gzip-compressed or not), real JSON, correct digests and sizes, unless a
test asks for a lie. Standard library only.

    base = busybox_layer(users={"app": 1000})
    top = Layer().file("etc/motd", b"hi\\n").whiteout("etc/issue")
    write_layout(path, [Image([base, top], config={"Cmd": ["/bin/sh"]})])

Gzip output is deterministic (mtime 0), so the same layer built twice has
the same digest: images can share layers."""

import gzip
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

BUSYBOX = "/bin/busybox"
APPLETS = ("sh", "echo", "cat", "id", "ls", "sleep", "pwd", "env", "true", "false", "touch", "mkdir", "stat")
MTIME = 1_600_000_000


def sha256(data):
    return hashlib.sha256(data).hexdigest()


class Layer:
    """A layer: tar entries in order, then its blob."""

    def __init__(self, compression="gzip"):
        self.entries = []  # (TarInfo, data or None)
        self.compression = compression
        # what the descriptor and the config claim, when a test wants a lie
        self.blob_edit = None      # function(bytes) -> bytes, applied to the blob
        self.declare_digest = None
        self.declare_size = None
        self.declare_diff_id = None

    def _add(self, name, kind, data=None, mode=0o644, uid=0, gid=0, mtime=MTIME, **kw):
        ti = tarfile.TarInfo(name)
        ti.type = kind
        ti.mode = mode
        ti.uid, ti.gid = uid, gid
        ti.mtime = mtime
        for k, v in kw.items():
            setattr(ti, k, v)
        if data is not None:
            ti.size = len(data)
        self.entries.append((ti, data))
        return self

    def file(self, name, data, mode=0o644, **kw):
        return self._add(name, tarfile.REGTYPE, data, mode, **kw)

    def dir(self, name, mode=0o755, **kw):
        return self._add(name, tarfile.DIRTYPE, None, mode, **kw)

    def symlink(self, name, target, **kw):
        return self._add(name, tarfile.SYMTYPE, None, 0o777, linkname=target, **kw)

    def hardlink(self, name, target, **kw):
        return self._add(name, tarfile.LNKTYPE, None, 0o644, linkname=target, **kw)

    def device(self, name, major=1, minor=3, **kw):
        return self._add(name, tarfile.CHRTYPE, None, 0o666, devmajor=major, devminor=minor, **kw)

    def whiteout(self, path):
        d, base = os.path.split(path)
        return self.file(os.path.join(d, ".wh." + base), b"", mode=0o600)

    def opaque(self, dirpath):
        return self.file(os.path.join(dirpath, ".wh..wh..opq"), b"", mode=0o600)

    def tar(self):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
            for ti, data in self.entries:
                t.addfile(ti, io.BytesIO(data) if data is not None else None)
        return buf.getvalue()

    def build(self):
        """(blob, media type, diff_id) as the descriptor and config state them."""
        raw = self.tar()
        if self.compression == "gzip":
            blob = gzip.compress(raw, mtime=0)
            media = "application/vnd.oci.image.layer.v1.tar+gzip"
        else:
            blob = raw
            media = "application/vnd.oci.image.layer.v1.tar"
        diff_id = "sha256:" + sha256(raw)
        if self.blob_edit:
            blob = self.blob_edit(blob)
        return blob, media, self.declare_diff_id or diff_id


def busybox_layer(users=None, extra_applets=(), compression="gzip"):
    """A userland: /bin/busybox, symlinks for the usual applets, an /etc
    with passwd and group (root plus users: {name: uid}, gid = uid)."""
    users = users or {}
    busybox = Path(BUSYBOX).read_bytes()
    passwd = "root:x:0:0:root:/root:/bin/sh\n" + "".join(
        f"{n}:x:{u}:{u}::/home/{n}:/bin/sh\n" for n, u in users.items())
    group = "root:x:0:\n" + "".join(f"{n}:x:{u}:\n" for n, u in users.items())
    layer = Layer(compression).dir("bin").dir("etc").dir("tmp", mode=0o1777)
    layer.file("bin/busybox", busybox, mode=0o755)
    for a in APPLETS + tuple(extra_applets):
        layer.symlink(f"bin/{a}", "busybox")
    layer.file("etc/passwd", passwd.encode()).file("etc/group", group.encode())
    return layer


class Image:
    def __init__(self, layers, config=None, tag=None, config_edit=None):
        self.layers = layers
        self.config = config or {}
        self.tag = tag
        self.config_edit = config_edit  # function(dict) for a lying config


def _put_blob(blobs, data):
    digest = sha256(data)
    (blobs / digest).write_bytes(data)
    return "sha256:" + digest


def write_layout(path, images):
    """Writes the layout directory path; returns, per image, a dict with
    the digests used (manifest, config, layers: [(digest, diff_id)])."""
    path = Path(path)
    blobs = path / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    (path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    manifests, infos = [], []
    for img in images:
        descs, diff_ids, info = [], [], {"layers": []}
        for layer in img.layers:
            blob, media, diff_id = layer.build()
            digest = _put_blob(blobs, blob)
            if layer.declare_digest:
                # the file carries the claimed name, not its own digest
                os.rename(blobs / digest.split(":")[1], blobs / layer.declare_digest.split(":")[1])
                digest = layer.declare_digest
            size = layer.declare_size if layer.declare_size is not None else len(blob)
            descs.append({"mediaType": media, "digest": digest, "size": size})
            diff_ids.append(diff_id)
            info["layers"].append((digest, diff_id))
        config = {
            "architecture": "amd64", "os": "linux",
            "config": img.config,
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }
        if img.config_edit:
            img.config_edit(config)
        cdata = json.dumps(config).encode()
        cdigest = _put_blob(blobs, cdata)
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cdigest,
                       "size": len(cdata)},
            "layers": descs,
        }
        mdata = json.dumps(manifest).encode()
        mdigest = _put_blob(blobs, mdata)
        desc = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": mdigest, "size": len(mdata)}
        if img.tag:
            desc["annotations"] = {"org.opencontainers.image.ref.name": img.tag}
        manifests.append(desc)
        info.update(manifest=mdigest, config=cdigest)
        infos.append(info)
    (path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": manifests}))
    return infos


def write_tar(layout, tar_path):
    """A tar of the layout directory, its entries relative to it."""
    with tarfile.open(tar_path, "w") as t:
        for p in sorted(Path(layout).rglob("*")):
            t.add(p, arcname=str(p.relative_to(layout)), recursive=False)
    return tar_path
