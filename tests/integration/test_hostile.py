"""Hostile input against a real pod.

Names, namespaces, argv, env and paths that try to break out of a unit file;
frames that are oversized, truncated, garbage or out of order; more
connections than the agent takes. Each bad input is either refused with
INVALID_ARGUMENT and changes nothing, or reaches the app byte for byte, and
the agent keeps serving everybody else without restarting."""

import json
import random
import select
import socket
import struct
import time

from conftest import wait_for

# -- protobuf wire format, by hand (docs/protocol.md §10) ---------------------
OK = 0
INVALID_ARGUMENT = 3
RESOURCE_EXHAUSTED = 8
FAILED_PRECONDITION = 9
UNIMPLEMENTED = 12
FRAME_MAX = 4 * 1024 * 1024
CONNECTIONS_MAX = 128


def varint(n):
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field(num, wire_type, value):
    tag = varint(num << 3 | wire_type)
    return tag + varint(value) if wire_type == 0 else tag + varint(len(value)) + value


def envelope(call_id, request):
    """Envelope{call_id=1, request=2}."""
    return (field(1, 0, call_id) if call_id else b"") + field(2, 2, request)


def hello(version=1):
    return field(1, 2, field(1, 0, version) + field(2, 2, b"test_hostile"))  # Request.hello


INFO = field(8, 2, b"")  # Request.info, an empty InfoRequest


def frame(body):
    return struct.pack(">I", len(body)) + body


def _read_varint(buf, i):
    n = shift = 0
    while True:
        byte = buf[i]
        i += 1
        n |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return n, i


def parse_message(buf):
    """{field number: [values]}: ints for varints, bytes for the rest."""
    out, i = {}, 0
    while i < len(buf):
        tag, i = _read_varint(buf, i)
        num, wire_type = tag >> 3, tag & 7
        if wire_type == 0:
            value, i = _read_varint(buf, i)
        elif wire_type == 2:
            n, i = _read_varint(buf, i)
            value, i = bytes(buf[i:i + n]), i + n
        elif wire_type in (1, 5):
            n = 8 if wire_type == 1 else 4
            value, i = bytes(buf[i:i + n]), i + n
        else:
            raise AssertionError(f"agent sent wire type {wire_type}: {bytes(buf)!r}")
        out.setdefault(num, []).append(value)
    return out


def response(body):
    """(call_id, code, message, result fields) of an Envelope carrying a Response."""
    env = parse_message(body)
    assert 3 in env, f"not a Response envelope: {body!r}"
    resp = parse_message(env[3][0])
    results = {k: v for k, v in resp.items() if k >= 10}
    return env.get(1, [0])[0], resp.get(1, [0])[0], resp.get(2, [b""])[0].decode(), results


class Raw:
    """A raw client connection to the control socket."""

    def __init__(self, pod, timeout=5.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.eof = False
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock.connect(str(pod.socket))
                return
            except BlockingIOError:  # the listen backlog is full for now
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.005)

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout()
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
        self.buf += data

    def _take_frame(self):
        if len(self.buf) < 4:
            return None
        n = struct.unpack(">I", self.buf[:4])[0]
        if len(self.buf) < 4 + n:
            return None
        body, self.buf = self.buf[4:4 + n], self.buf[4 + n:]
        return body

    def frames(self, count, timeout=5.0):
        """Exactly `count` frames; fails if the connection ends or stalls first."""
        deadline = time.monotonic() + timeout
        out = []
        while len(out) < count:
            body = self._take_frame()
            if body is not None:
                out.append(body)
                continue
            assert not self.eof, f"connection closed after {len(out)} of {count} frames"
            try:
                self._fill(deadline)
            except socket.timeout:
                raise AssertionError(f"only {len(out)} of {count} frames within {timeout}s") from None
        return out

    def until_closed(self, timeout=5.0):
        """Every frame up to end of stream; fails if the agent does not close."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            try:
                self._fill(deadline)
            except socket.timeout:
                raise AssertionError(f"the agent did not close the connection within {timeout}s") from None
        out = []
        while (body := self._take_frame()) is not None:
            out.append(body)
        assert self.buf == b"", f"a partial frame before end of stream: {self.buf!r}"
        return out

    def is_open(self, wait=0.3):
        """True when nothing arrives and the connection stays up for `wait` seconds."""
        r, _, _ = select.select([self.sock], [], [], wait)
        return not r

    def hello(self, call_id=1):
        self.send(frame(envelope(call_id, hello())))
        cid, code, message, results = response(self.frames(1)[0])
        assert (cid, code) == (call_id, OK), message
        assert 10 in results
        return results

    def close(self):
        self.sock.close()


def expect_refused(conn, code, words, timeout=5.0):
    """One Response on call_id 0 with `code`, then end of stream, and nothing else."""
    frames = conn.until_closed(timeout)
    assert len(frames) == 1, f"expected one error frame, got {[response(f) for f in frames]}"
    cid, got, message, results = response(frames[0])
    assert (cid, got) == (0, code), (cid, got, message)
    assert words in message, message
    assert not results


def assert_agent_serves(pod, agent_pid):
    """Another client works and the agent neither crashed nor restarted."""
    info = pod.json("--timeout", "5", "info")
    assert info["pod_name"] == pod.name
    assert pod.agent_pid() == agent_pid


# -- helpers for apps and unit files ------------------------------------------
def app_units(pod):
    return pod.app_unit_files()


def assert_nothing_created(pod):
    assert pod.json("ls") == []
    assert app_units(pod) == []


def unit_text(pod, unit):
    return pod.path(f"/run/systemd/system/{unit}.d/app.conf").read_bytes()


def unit_keys(text):
    """The shape of a unit file: a section header, a blank or a directive key per line."""
    lines = text.decode().split("\n")
    shape = []
    for line in lines:
        if line.startswith("[") and line.endswith("]"):
            shape.append(line)
        elif line == "":
            shape.append("")
        else:
            key, eq, _ = line.partition("=")
            assert eq, f"a line that is no directive: {line[:200]!r}"
            shape.append(key)
    return shape


def assert_same_shape(pod, hostile_unit, benign_unit):
    hostile, benign = unit_text(pod, hostile_unit), unit_text(pod, benign_unit)
    # systemd ends a line at \n, \r and NUL; none may be written raw.
    assert b"\r" not in hostile and b"\0" not in hostile
    benign_shape = unit_keys(benign)
    allowed = set(benign_shape)
    hostile_shape = unit_keys(hostile)
    assert set(hostile_shape) <= allowed, set(hostile_shape) - allowed
    assert len(hostile_shape) == len(benign_shape)
    assert hostile_shape == benign_shape
    # No line, quoted or not, was turned into a second directive.
    for line in hostile.decode().split("\n"):
        assert not line.startswith(("ExecStartPre", "ExecStartPost", "ExecStop", "ExecCondition")), line


def run_benign_twin(pod, name, n_env):
    env = [f"--env=B{i}=plain" for i in range(n_env)]
    pod.pmctl("run", f"--name={name}", *env, "--", "/bin/sh", "-c", "true")
    return pod.wait_state(name, "exited")["unit"]


def capture_script(tag):
    """A shell script that writes its own argv and environment, NUL-separated."""
    return f'printf "%s\\0" "$0" "$@" > /tmp/argv-{tag}.out; env -0 > /tmp/env-{tag}.out'


def captured(pod, tag):
    argv = pod.path(f"/tmp/argv-{tag}.out").read_bytes().split(b"\0")
    env = pod.path(f"/tmp/env-{tag}.out").read_bytes().split(b"\0")
    assert argv[-1] == b"" and env[-1] == b""
    return argv[:-1], env[:-1]


def assert_env_exact(env_entries, expected):
    """Every variable we set arrives unchanged; nothing else carries our bytes."""
    got = {}
    for entry in env_entries:
        key, _, value = entry.partition(b"=")
        got[key] = value
    for key, value in expected.items():
        assert key.encode() in got, f"{key} missing from the app's environment"
        assert got[key.encode()] == value.encode(), (key, got[key.encode()][:200], value[:200])
    ours = {k.encode() for k in expected}
    for key, value in got.items():
        if key not in ours:
            assert b"pwned" not in key + value, (key, value)


BIG = "".join(chr(0x21 + i % 94) for i in range(60 * 1024))  # 60 KiB, printable, with % $ \ " '

HOSTILE = {
    "space": "a b  c",
    "lead_trail": "  lead and trail  ",
    "squote": "it's",
    "dquote": 'say "hi"',
    "quotes": "'\"'\"'",
    "newline": "line1\nline2",
    "tab": "a\tb",
    "cr": "a\rb",
    "crlf": "a\r\nb",
    "dollar_home": "$HOME",
    "dollar_brace": "${X}",
    "dollar_dollar": "$$",
    "dollar_end": "cost$",
    "dollar_open": "${",
    "subst": "$(touch /tmp/pwned)",
    "backtick": "`touch /tmp/pwned`",
    "pct_h": "%h",
    "pct_pct": "%%",
    "pct_end": "100%",
    "pct_n": "%n%i%u",
    "backslash": "\\",
    "backslash_n": "\\n",
    "backslash_x": "\\x41\\101\\u0041",
    "backslash_quote": '\\"',
    "semicolon": ";",
    "shell": "a && b | c > /tmp/pwned",
    "hash": "# not a comment",
    "dash": "-x",
    "dashdash": "--",
    "at": "@x",
    "nonascii": "é 日本 😀",
    "unicode_breaks": "a\u2028b\u0085c\u2029",
    "unit_line": "\n[Service]\nExecStartPre=/bin/touch /tmp/pwned",
    "unit_line_quoted": 'x"\nExecStartPre=/bin/touch /tmp/pwned\n#',
    "unit_line_cr": "x\rExecStartPre=/bin/touch /tmp/pwned",
    "empty": "",
    "big": BIG,
    "trailing_backslash": "end\\",  # last: at the end of the ExecStart line
}


# -- names and namespaces -----------------------------------------------------
BAD_LABELS = ["a/b", "../x", "..", ".", "a\nb", "a\n[Service]", "x" * 300, "x" * 64, "Web", "WEB",
              "-lead", "trail-", "a.b", "a b", "a_b", "é", "a\tb", "a%h", "a$b", "*", "a\\b"]


def test_bad_names_and_namespaces_are_rejected_naming_the_field_and_create_nothing(pod, tmp_path):
    failures = []
    for bad in BAD_LABELS:
        for field_name, opts in (("name", [f"--name={bad}"]), ("namespace", ["--name=ok", f"--ns={bad}"])):
            r = pod.pmctl("run", *opts, "--", "/bin/true", check=False)
            if r.returncode != 5 or f"{field_name}:" not in r.stderr:
                failures.append((field_name, bad[:40], r.returncode, r.stderr[:200]))
    # An empty name cannot be given through `run` (it makes one up); a spec can.
    for spec, field_name in (({"name": "", "argv": ["/bin/true"]}, "name"),
                             ({"argv": ["/bin/true"]}, "name"),
                             ({"name": "ok", "namespace": "../x", "argv": ["/bin/true"]}, "namespace"),
                             ({"name": "a\u0000b", "argv": ["/bin/true"]}, "NUL")):
        f = tmp_path / "spec.json"
        f.write_text(json.dumps(spec))
        r = pod.pmctl("inject", "-f", str(f), check=False)
        if r.returncode != 5 or field_name not in r.stderr:
            failures.append((spec, r.returncode, r.stderr[:200]))
    assert not failures, "\n".join(map(repr, failures))
    assert_nothing_created(pod)

    # The longest DNS label is fine; it is the 64th character that is refused.
    pod.pmctl("run", "--name=" + "n" * 63, "--ns=" + "s" * 63, "--", "/bin/true")
    assert [a["name"] for a in pod.json("ls")] == ["n" * 63]


def test_lookups_by_hostile_names_find_nothing_and_change_nothing(pod):
    pod.run("web", "/bin/sleep", "1000")
    before = pod.json("ls")
    agent = pod.agent_pid()
    for bad in ["../web", "web/", "web\n", "x" * 300, "%h", "$HOME", "*", "w", "web "]:
        for verb in (["status"], ["start"], ["stop", "-t", "0"], ["rm", "-f"]):
            r = pod.pmctl(*verb, bad, check=False, timeout=15)
            assert r.returncode == 4, (verb, bad, r.returncode, r.stderr)
            assert "no app" in r.stderr
        r = pod.pmctl("status", "--ns", bad, "web", check=False)
        assert r.returncode == 4, (bad, r.stderr)
    r = pod.pmctl("status", "", check=False)
    assert r.returncode == 5 and "no app given" in r.stderr
    assert pod.json("ls") == before
    assert pod.agent_pid() == agent


# -- argv and env, byte for byte ----------------------------------------------
def test_hostile_argv_and_env_reach_the_process_byte_for_byte_through_run(pod):
    values = list(HOSTILE.values())
    env = {f"H_{k.upper()}": v for k, v in HOSTILE.items()}
    env["H_WITH_EQUALS"] = "a=b==c"
    args = ["/bin/sh", "-c", capture_script("run"), "zero $0 'x'", *values]
    env_opts = [f"--env={k}={v}" for k, v in env.items()]
    pod.pmctl("run", "--name=hostile", *env_opts, "--", *args)
    st = pod.wait_state("hostile", "exited")
    assert (st["exit_code"], st["reason"]) == (0, "Completed")

    argv, env_entries = captured(pod, "run")
    expected = [a.encode() for a in args[3:]]
    assert len(argv) == len(expected)
    for i, (got, want) in enumerate(zip(argv, expected)):
        assert got == want, (i, got[:200], want[:200])
    assert_env_exact(env_entries, env)
    assert not pod.path("/tmp/pwned").exists(), "a hostile value ran a command"

    # The unit file has exactly the lines a benign app with as many env entries has.
    benign = run_benign_twin(pod, "benign", len(env))
    assert_same_shape(pod, st["unit"], benign)
    # And systemd sees one command and no extra ones.
    show = pod.nsenter("systemctl", "show", "-p", "ExecStartPre", "-p", "ExecStartPost", "--value",
                       st["unit"]).stdout
    assert show.strip() == "", show


def test_control_characters_in_a_spec_file_reach_the_process_byte_for_byte(pod, tmp_path):
    controls = "".join(chr(c) for c in range(1, 0x20)) + "\x7f"
    values = {
        "soh": "a\u0001b",
        "del": "a\u007fb",
        "esc": "\u001b[31mred\u001b[0m",
        "all_controls": controls,
        "vt_ff": "a\u000bb\u000cc",
        "bell_bs": "\u0007\u0008",
        "control_unit_line": "\u0001\n[Service]\u000d\nExecStartPre=/bin/touch /tmp/pwned\u007f",
        **HOSTILE,
    }
    args = ["/bin/sh", "-c", capture_script("spec"), "zero", *values.values()]
    env = {f"C_{k.upper()}": v for k, v in values.items()}
    spec = {"name": "ctl", "argv": args, "env": env}
    text = json.dumps(spec, ensure_ascii=True)
    assert "\\u0001" in text and "\\u007f" in text  # the controls travel JSON-escaped
    f = tmp_path / "ctl.json"
    f.write_text(text)
    pod.pmctl("inject", "--start", "-f", str(f))
    st = pod.wait_state("ctl", "exited")
    assert (st["exit_code"], st["reason"]) == (0, "Completed")

    argv, env_entries = captured(pod, "spec")
    expected = [a.encode() for a in args[3:]]
    assert len(argv) == len(expected)
    for i, (got, want) in enumerate(zip(argv, expected)):
        assert got == want, (i, got[:200], want[:200])
    assert_env_exact(env_entries, env)
    assert not pod.path("/tmp/pwned").exists()

    benign = run_benign_twin(pod, "benign", len(env))
    assert_same_shape(pod, st["unit"], benign)


def test_hostile_working_directory_is_used_verbatim_or_rejected(pod):
    accepted = ["/tmp/w d'\"$x%h é;", "/tmp/-x", "/tmp/%%", "/tmp/${HOME}", "/tmp/a\u2028b"]
    rejected = ["/tmp/trail ", "/tmp/a\\b", "/tmp/a\nb", "/tmp/a\rb", "/tmp/../etc", "/tmp/./x", "tmp/rel",
                "/tmp/\u0001", "/tmp/a\n[Service]\nExecStartPre=/bin/touch /tmp/pwned"]
    for i, d in enumerate(accepted):
        pod.path(d).mkdir(parents=True)
        pod.pmctl("run", f"--name=w{i}", "--workdir", d, "--", "/bin/sh", "-c", f"pwd > /tmp/pwd{i}.out")
        st = pod.wait_state(f"w{i}", "exited")
        assert st["exit_code"] == 0
        assert pod.path(f"/tmp/pwd{i}.out").read_bytes() == d.encode() + b"\n"
        assert_same_shape(pod, st["unit"], _workdir_twin(pod))
    names = [a["name"] for a in pod.json("ls")]
    for d in rejected:
        r = pod.pmctl("run", "--name=bad", "--workdir", d, "--", "/bin/true", check=False)
        assert r.returncode == 5 and "working_dir" in r.stderr, (d, r.returncode, r.stderr)
    assert [a["name"] for a in pod.json("ls")] == names
    assert not pod.path("/tmp/pwned").exists()


def _workdir_twin(pod):
    if not pod.path("/tmp/plain").exists():
        pod.path("/tmp/plain").mkdir()
        pod.pmctl("run", "--name=plain", "--workdir", "/tmp/plain", "--", "/bin/true")
    return pod.wait_state("plain", "exited")["unit"]


# -- values that must be refused ----------------------------------------------
def test_invalid_env_names_and_non_utf8_values_are_rejected_and_create_nothing(pod, tmp_path):
    for opt in ["1A=x", "9=x", "A-B=x", "A B=x", "A.B=x", "É=x", "A\nB=x", "A=\udcff", "A=x\udcfey"]:
        r = pod.pmctl("run", "--name=e", f"--env={opt}", "--", "/bin/true", check=False)
        assert r.returncode == 5 and "env" in r.stderr, (opt, r.returncode, r.stderr)
    r = pod.pmctl("run", "--name=e", "--env==x", "--", "/bin/true", check=False)
    assert r.returncode == 2  # pmctl's own usage error: no key at all
    for env in [{"A=B": "x"}, {"": "x"}, {"1A": "x"}, {"A": "x\u0000y"}, {"A\u0000": "x"}]:
        f = tmp_path / "env.json"
        f.write_text(json.dumps({"name": "e", "argv": ["/bin/true"], "env": env}))
        r = pod.pmctl("inject", "-f", str(f), check=False)
        assert r.returncode == 5, (env, r.stderr)
        assert "env" in r.stderr or "NUL" in r.stderr, (env, r.stderr)
    assert_nothing_created(pod)


def test_hostile_user_group_stop_signal_and_rootfs_are_rejected_and_create_nothing(pod, tmp_path):
    payload = "\nExecStartPre=/bin/touch /tmp/pwned"
    cases = {
        "user": ["root" + payload, "root x", "-root", "r%h", "$USER", "x" * 300, "Root"],
        "group": ["0" + payload, "0 1", "-g", "g%h", "4294967295"],
        "stop_signal": ["TERM" + payload, "SIGTERM ", "SIGFOO", "0", "%h"],
        "rootfs": ["/" + payload, "/tmp/a\\b", "relative", "/tmp/../tmp", "/tmp/\u0001"],
    }
    for key, values in cases.items():
        for value in values:
            f = tmp_path / "spec.json"
            f.write_text(json.dumps({"name": "h", "argv": ["/bin/true"], key: value}))
            r = pod.pmctl("inject", "--start", "-f", str(f), check=False)
            assert r.returncode == 5 and key in r.stderr, (key, value, r.returncode, r.stderr)
    assert_nothing_created(pod)
    assert not pod.path("/tmp/pwned").exists()


def test_invalid_utf8_in_a_spec_file_is_rejected(pod, tmp_path):
    f = tmp_path / "raw.json"
    for raw in (b'{"name": "a", "argv": ["/bin/true", "\xff"]}',
                b'{"name": "a", "argv": ["/bin/true"], "env": {"A": "\xc3"}}',
                b'{"name": "a", "argv": ["/bin/true"], "env": {"A": "\xed\xa0\x80"}}',
                b'{"name": "a\xe9", "argv": ["/bin/true"]}'):
        f.write_bytes(raw)
        r = pod.pmctl("inject", "-f", str(f), check=False)
        assert r.returncode == 5 and "UTF-8" in r.stderr, (raw, r.stderr)
    assert_nothing_created(pod)


def test_lone_surrogate_escapes_in_a_spec_file_are_rejected_not_replaced(pod, tmp_path):
    """"\\ud800" names no character: a spec holding one is refused, not run
    with U+FFFD put in its place."""
    f = tmp_path / "surrogate.json"
    for text in ('{"name": "a", "argv": ["/bin/true", "A\\ud800B"]}',
                 '{"name": "a", "argv": ["/bin/true", "\\udc00"]}',
                 '{"name": "a", "argv": ["/bin/true"], "env": {"A": "x\\ud83d"}}'):
        f.write_text(text)
        r = pod.pmctl("inject", "-f", str(f), check=False)
        assert r.returncode == 5, (text, r.returncode, r.stderr, pod.json("ls"))
    assert_nothing_created(pod)


def test_argv_with_systemd_prefixes_control_characters_or_bad_utf8_is_rejected(pod, tmp_path):
    for argv in (["-x"], ["@x"], ["+/bin/true"], ["!/bin/true"], ["!!/bin/true"], [":/bin/true"],
                 ["/bin/tr\nue"], ["/bin/tr\tue"], ["/bin/a\\b"], ["\udcff"], ["bin/true"],
                 ["/bin/true", "\udcff"], ["/bin/true", "ok", "x\udcc3"]):
        r = pod.pmctl("run", "--name=a", "--", *argv, check=False)
        assert r.returncode == 5 and "argv" in r.stderr, (argv, r.returncode, r.stderr)
    for argv in ([], ["/bin/true", "a\u0000b"], ["/bin/\u0001true"], ["\u007f/bin/true"]):
        f = tmp_path / "argv.json"
        f.write_text(json.dumps({"name": "a", "argv": argv}))
        r = pod.pmctl("inject", "-f", str(f), check=False)
        assert r.returncode == 5, (argv, r.stderr)
    assert_nothing_created(pod)


def test_command_path_with_quotes_or_dollar_is_rejected_or_executed_verbatim(pod):
    """argv[0] is written into ExecStart='s executable word, where systemd
    neither undoes '$$' nor accepts quotes: every such path must be refused
    up front or reach the process unchanged."""
    dirs = ["/tmp/sp ace", "/tmp/p%hx", "/tmp/é", "/tmp/semi;", "/tmp/q'q", '/tmp/dq"x', "/tmp/d$x",
            "/tmp/$HOME", "/tmp/${X}"]
    failures = []
    for i, d in enumerate(dirs):
        prog = pod.path(d) / "prog"
        prog.parent.mkdir(parents=True)
        prog.write_text('#!/bin/sh\nprintf "%s\\0" "$0" "$@" > "/tmp/argv0-$1.out"\n')
        prog.chmod(0o755)
        path = f"{d}/prog"
        r = pod.pmctl("run", f"--name=p{i}", "--", path, str(i), check=False)
        if r.returncode == 5 and "argv[0]" in r.stderr:
            if any(a["name"] == f"p{i}" for a in pod.json("ls")):
                failures.append((path, "refused but created"))
            continue
        if r.returncode != 0:
            failures.append((path, r.returncode, r.stderr.strip()[-160:]))
            continue
        st = pod.wait_state(f"p{i}", "exited")
        out = pod.path(f"/tmp/argv0-{i}.out")
        got = out.read_bytes() if out.exists() else None
        if st["exit_code"] != 0 or got != path.encode() + b"\0" + str(i).encode() + b"\0":
            failures.append((path, st["exit_code"], got))
    assert not failures, "\n".join(map(repr, failures))


def test_command_systemd_cannot_execute_is_rejected_at_inject(pod):
    """A command that systemd refuses to load ('Executable path specifies a
    directory', an invalid file name, a path over PATH_MAX) is an invalid
    argument, not a unit with a bad setting left behind."""
    failures = []
    for i, cmd in enumerate(["/bin/true/", ".", "..", "t" * 300, "/" + "a/" * 2100 + "true"]):
        r = pod.pmctl("run", f"--name=c{i}", "--", cmd, check=False)
        if r.returncode != 5 or "argv[0]" not in r.stderr:
            failures.append((cmd[:40], r.returncode, r.stderr.strip()[-160:]))
    assert not failures, "\n".join(map(repr, failures))
    assert_nothing_created(pod)


# -- frames -------------------------------------------------------------------
def test_oversized_frame_header_gets_resource_exhausted_then_close(pod):
    agent = pod.agent_pid()
    for header, after_hello in ((0xFFFFFFFF, False), (0xFFFFFFFF, True), (FRAME_MAX + 1, False)):
        c = Raw(pod)
        if after_hello:
            c.hello()
        c.send(struct.pack(">I", header))
        expect_refused(c, RESOURCE_EXHAUSTED, "frame larger than the limit")
        c.close()
        assert_agent_serves(pod, agent)
    # Extra bytes behind the oversized header are never read as a frame.
    c = Raw(pod)
    c.send(struct.pack(">I", 0xFFFFFFFF) + frame(envelope(1, hello())) * 3)
    expect_refused(c, RESOURCE_EXHAUSTED, "frame larger than the limit")
    c.close()
    # The limit is inclusive: a frame of exactly 4 MiB is read (and here found to be garbage).
    c = Raw(pod, timeout=20)
    c.send(frame(b"\xff" * FRAME_MAX))
    expect_refused(c, INVALID_ARGUMENT, "not a valid Envelope", timeout=20)
    c.close()
    assert_agent_serves(pod, agent)


GARBAGE = [
    b"\xff" * 100,                                              # a tag that never ends
    b"\x0f" + random.Random(1).randbytes(99),                   # field 1 with wire type 7
    b"\x12\x64" + b"\x00" * 10,                                 # a body longer than the frame
    b"\x08" + b"\x80" * 20,                                     # a varint of 20 bytes
    b"\x12\x05\x0a\x03\x08\x01",                                # nested Request cut short
]


def test_garbage_frames_get_invalid_argument_then_close(pod):
    agent = pod.agent_pid()
    for body in GARBAGE:
        for after_hello in (False, True):
            c = Raw(pod)
            if after_hello:
                c.hello()
            c.send(frame(body))
            expect_refused(c, INVALID_ARGUMENT, "not a valid Envelope")
            c.close()
        assert_agent_serves(pod, agent)


def test_garbage_behind_good_requests_is_refused_after_they_are_answered(pod):
    agent = pod.agent_pid()
    c = Raw(pod)
    c.send(frame(envelope(1, hello())) + frame(envelope(2, INFO)) + frame(GARBAGE[0]) + frame(envelope(3, INFO)))
    frames = c.until_closed()
    answers = [response(f) for f in frames]
    assert [(cid, code) for cid, code, _, _ in answers] == [(1, OK), (2, OK), (0, INVALID_ARGUMENT)], answers
    assert 17 in answers[1][3]  # Response.info
    c.close()
    assert_agent_serves(pod, agent)


def test_truncated_frame_closes_only_that_connection(pod):
    agent = pod.agent_pid()
    for after_hello in (False, True):
        for how in ("shutdown", "close"):
            c = Raw(pod)
            if after_hello:
                c.hello()
            c.send(struct.pack(">I", 1000) + b"x" * 10)
            if how == "shutdown":
                c.sock.shutdown(socket.SHUT_WR)
                frames = c.until_closed()
                # Nothing but, at most, one connection-level error.
                assert len(frames) <= 1, [response(f) for f in frames]
                for f in frames:
                    cid, code, message, results = response(f)
                    assert cid == 0 and code != OK and not results, message
            c.close()
            assert_agent_serves(pod, agent)
    # Half a header, then end of stream.
    c = Raw(pod)
    c.send(b"\x00\x00")
    c.sock.shutdown(socket.SHUT_WR)
    assert len(c.until_closed()) <= 1
    c.close()
    assert_agent_serves(pod, agent)


def test_idle_client_with_half_a_header_does_not_block_others(pod):
    agent = pod.agent_pid()
    idle = Raw(pod, timeout=10)
    idle.send(b"\x00\x00")  # half of a header, then nothing
    stalled = Raw(pod, timeout=10)
    stalled.hello()
    stalled.send(struct.pack(">I", 1000) + b"\x08")  # a frame started, never finished
    t0 = time.monotonic()
    pod.run("busy", "/bin/sleep", "1000")
    assert pod.status("busy")["state"] == "running"
    pod.pmctl("stop", "-t", "0", "busy")
    pod.pmctl("rm", "busy")
    assert_agent_serves(pod, agent)
    assert time.monotonic() - t0 < 10
    # The idle ones are still there, and the first one finishes its frame fine.
    assert idle.is_open() and stalled.is_open()
    hello_frame = frame(envelope(1, hello()))
    idle.send(hello_frame[2:])
    cid, code, _, results = response(idle.frames(1)[0])
    assert (cid, code) == (1, OK) and 10 in results
    idle.send(frame(envelope(2, INFO)))
    assert response(idle.frames(1)[0])[:2] == (2, OK)
    idle.close()
    stalled.close()
    assert_agent_serves(pod, agent)


def test_request_before_hello_or_with_a_wrong_version_is_refused_then_closed(pod):
    agent = pod.agent_pid()
    c = Raw(pod)
    c.send(frame(envelope(1, INFO)))
    expect_refused(c, FAILED_PRECONDITION, "first call on a connection must be Hello")
    c.close()
    # Pipelined requests behind the refused one are not answered.
    c = Raw(pod)
    c.send(frame(envelope(7, field(7, 2, field(1, 2, field(1, 2, b"x"))))) + frame(envelope(8, hello())))
    expect_refused(c, FAILED_PRECONDITION, "first call on a connection must be Hello")
    c.close()
    for version in (0, 2, 0xFFFFFFFF):
        c = Raw(pod)
        c.send(frame(envelope(1, hello(version))) + frame(envelope(2, INFO)))
        expect_refused(c, FAILED_PRECONDITION, "not supported")
        c.close()
    assert_agent_serves(pod, agent)


def test_stray_and_unknown_frames_get_an_error_and_keep_the_connection(pod):
    agent = pod.agent_pid()
    c = Raw(pod)
    c.hello()
    c.send(frame(b""))                                        # an empty Envelope
    c.send(frame(field(1, 0, 5) + field(4, 2, field(2, 2, b"data"))))  # StreamData, no stream
    c.send(frame(field(1, 0, 6) + field(7, 2, b"")))          # Cancel, no stream
    c.send(frame(envelope(9, field(19, 2, b""))))             # a call from the future
    c.send(frame(envelope(10, b"")))                          # a Request with no call at all
    answers = [response(f)[:2] for f in c.frames(5)]
    assert answers == [(0, FAILED_PRECONDITION), (5, FAILED_PRECONDITION), (6, FAILED_PRECONDITION),
                       (9, UNIMPLEMENTED), (10, UNIMPLEMENTED)], answers
    c.send(frame(envelope(11, INFO)))
    assert response(c.frames(1)[0])[:2] == (11, OK)
    assert c.is_open()
    c.close()
    assert_agent_serves(pod, agent)


def test_many_pipelined_requests_are_each_answered_once(pod):
    c = Raw(pod)
    c.send(frame(envelope(1, hello())) + b"".join(frame(envelope(i, INFO)) for i in range(2, 302)))
    answers = [response(f) for f in c.frames(301, timeout=15)]
    assert sorted(a[0] for a in answers) == list(range(1, 302))
    assert all(a[1] == OK for a in answers)
    assert c.is_open()
    c.close()


def test_connections_over_the_limit_are_refused_and_the_agent_keeps_serving(pod):
    agent = pod.agent_pid()
    time.sleep(0.2)  # let the agent see earlier clients go
    conns = [Raw(pod) for _ in range(200)]
    try:
        # The extra ones get one error and are closed; the others stay silent.
        def refused_now():
            return [c for c in conns if not c.is_open(wait=0)]
        wait_for(lambda: len(refused_now()) >= 200 - CONNECTIONS_MAX, timeout=10, what="extra connections refused")
        time.sleep(0.3)
        refused = refused_now()
        held = [c for c in conns if c not in refused]
        assert (len(refused), len(held)) == (200 - CONNECTIONS_MAX, CONNECTIONS_MAX)
        for c in refused:
            expect_refused(c, RESOURCE_EXHAUSTED, "too many connections")

        # At the limit, a new client is refused at once.
        t0 = time.monotonic()
        r = pod.pmctl("--timeout", "5", "info", check=False, timeout=15)
        assert r.returncode != 0 and time.monotonic() - t0 < 5, (r.returncode, r.stderr)

        # One slot frees: another client works while the rest are still open.
        held.pop().close()
        wait_for(lambda: pod.pmctl("--timeout", "5", "info", check=False).returncode == 0, timeout=5,
                 what="a client to get the freed slot")
        # Every held connection is a working one.
        for c in held:
            c.send(frame(envelope(1, hello())) + frame(envelope(2, INFO)))
        for c in held:
            answers = [response(f) for f in c.frames(2)]
            assert [a[:2] for a in answers] == [(1, OK), (2, OK)], answers
    finally:
        for c in conns:
            c.close()
    wait_for(lambda: pod.pmctl("--timeout", "5", "info", check=False).returncode == 0, timeout=5,
             what="the agent to see its clients go")
    time.sleep(0.2)
    assert_agent_serves(pod, agent)
    # All slots come back.
    more = [Raw(pod) for _ in range(CONNECTIONS_MAX - 1)]
    try:
        for c in more:
            c.send(frame(envelope(1, hello())))
        for c in more:
            answer = response(c.frames(1)[0])
            assert answer[:2] == (1, OK), answer
        assert_agent_serves(pod, agent)
    finally:
        for c in more:
            c.close()


def test_a_client_refused_at_the_connection_limit_is_told_why(pod):
    """The agent answers an extra connection with RESOURCE_EXHAUSTED and
    closes it, often before the client has written its Hello: pmctl must
    still read and show that answer, not "Broken pipe"."""
    agent = pod.agent_pid()
    time.sleep(0.2)
    conns = [Raw(pod) for _ in range(CONNECTIONS_MAX)]
    try:
        for c in conns:
            c.send(frame(envelope(1, hello())))
        for c in conns:
            assert response(c.frames(1)[0])[:2] == (1, OK)
        answers = []
        for _ in range(20):
            r = pod.pmctl("--timeout", "5", "info", check=False, timeout=15)
            answers.append((r.returncode, r.stderr.strip()))
        wrong = [a for a in answers if a[0] not in (3, 10) or "too many connections" not in a[1]]
        assert not wrong, f"{len(wrong)} of {len(answers)} refusals not explained: {wrong[:3]}"
    finally:
        for c in conns:
            c.close()
    wait_for(lambda: pod.pmctl("--timeout", "5", "info", check=False).returncode == 0, timeout=5,
             what="the agent to see its clients go")
    assert pod.agent_pid() == agent


def test_logs_requests_with_negative_tail_or_since_are_refused_by_the_agent(pod):
    """pmctl refuses these itself; a client of its own gets INVALID_ARGUMENT
    naming the field, and the connection goes on serving."""
    pod.run("talker", "/bin/echo", "hi")
    agent = pod.agent_pid()
    c = Raw(pod)
    c.hello()
    ref = field(1, 2, field(1, 2, b"talker"))  # LogsRequest.ref = AppRef{app}
    for call_id, (num, value, name) in enumerate([(2, -5, "tail"), (3, -1, "since")], start=2):
        logs = ref + field(num, 0, value & (2**64 - 1))
        c.send(frame(envelope(call_id, field(17, 2, logs))))  # Request.logs
        cid, code, message, _ = response(c.frames(1)[0])
        assert (cid, code) == (call_id, INVALID_ARGUMENT), message
        assert message.startswith(f"{name}: ") and "negative" in message, message
    c.send(frame(envelope(9, INFO)))
    cid, code, message, _ = response(c.frames(1)[0])
    assert (cid, code) == (9, OK), message
    c.close()
    assert_agent_serves(pod, agent)
