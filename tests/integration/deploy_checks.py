# SPDX-License-Identifier: Apache-2.0
"""What test_deploy.py reads deploy/ with: the Dockerfile's stages and instructions, the
docs' cfg.yaml keys, ldd, dpkg ownership and dependencies, ELF symbol versions, and
command-line rewriting onto free ports. Pure helpers: they start no process that
outlives the call.
"""

import json
import os
import re
import shlex
import socket
import subprocess

import yaml

from harness import HERE, free_port

ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
DEPLOY = os.path.join(ROOT, "deploy")
HEADER = b'{"format":"json","version":1}\n'
RCVBUF = 64 * 1024 * 1024  # what xrayd asks for (udp.h)
GLIBC_MAX = (2, 34)        # Amazon Linux 2023
GLIBCXX_MAX = (3, 4, 29)   # Amazon Linux 2023's GCC 11
# Libraries the host provides, never bundled: glibc's and the compiler runtimes.
HOST_LIB = re.compile(r"^(libc|libm|libpthread|libdl|librt|libresolv|libutil|libanl|"
                      r"libBrokenLocale|libmvec|libnss_[a-z]+|ld-linux[-a-z0-9_.]*|libstdc\+\+|"
                      r"libgcc_s)\.so")


def read(*parts):
    with open(os.path.join(ROOT, *parts), encoding="utf-8") as f:
        return f.read()


def load_yaml_all(*parts):
    return [d for d in yaml.safe_load_all(read(*parts)) if d is not None]


def run(argv, **kw):
    kw.setdefault("timeout", 60)
    return subprocess.run(argv, capture_output=True, text=True, **kw)


def ldd(path, env=None):
    """[(soname, resolved path or None)] of every library ldd lists, vdso excluded."""
    out = run(["ldd", path], env=env).stdout
    libs = []
    for line in out.splitlines():
        m = re.match(r"\s*(\S+) => (\S+|not found)", line)
        if m:
            libs.append((m.group(1), None if m.group(2) == "not found" else m.group(2)))
        else:
            m = re.match(r"\s*(/\S+) \(0x", line)
            if m:
                libs.append((os.path.basename(m.group(1)), m.group(1)))
    return libs


def symbol_versions(path, prefix):
    """Every version of PREFIX_x.y.z that PATH's dynamic symbols need, as tuples."""
    out = run(["objdump", "-T", path]).stdout
    return {tuple(int(n) for n in v.split("."))
            for v in re.findall(r"\b%s_([0-9]+(?:\.[0-9]+)*)\b" % re.escape(prefix), out)}


def dpkg_owner(path):
    """The Debian package (no arch qualifier) shipping PATH, trying the merged-/usr twins."""
    real = os.path.realpath(path)
    candidates = [path, real]
    for p in (path, real):
        if p.startswith("/usr/"):
            candidates.append(p[4:])
        else:
            candidates.append("/usr" + p)
    for c in candidates:
        r = run(["dpkg", "-S", c])
        if r.returncode == 0:
            return r.stdout.split(":", 1)[0].split(",")[0].strip()
    return None


def dpkg_depends_closure(packages):
    """PACKAGES and every installed package they depend on (Depends, Pre-Depends),
    following every installed alternative."""
    seen = set()
    todo = list(packages)
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        r = run(["dpkg-query", "-W", "-f=${Depends}, ${Pre-Depends}", p])
        if r.returncode != 0:
            continue
        for clause in r.stdout.split(","):
            for alt in clause.split("|"):
                name = alt.strip().split(" ")[0].split(":")[0]
                if name and run(["dpkg-query", "-W", name]).returncode == 0:
                    todo.append(name)
    return seen


def dockerfile_instructions(text):
    """[(INSTRUCTION, arguments)] with continuations joined and comments dropped."""
    lines, cur = [], ""
    for raw in text.splitlines():
        s = raw.strip()
        if not cur and (not s or s.startswith("#")):
            continue
        if cur and s.startswith("#"):
            continue
        if s.endswith("\\"):
            cur += s[:-1] + " "
            continue
        cur += s
        lines.append(cur)
        cur = ""
    out = []
    for line in lines:
        ins, _, args = line.partition(" ")
        out.append((ins.upper(), args.strip()))
    return out


def dockerfile_stages(text):
    """[{'from': image, 'name': alias or None, 'ins': [(INSTRUCTION, args)]}]"""
    stages = []
    for ins, args in dockerfile_instructions(text):
        if ins == "FROM":
            words = args.split()
            words = [w for w in words if not w.startswith("--platform")]
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append({"from": words[0], "name": name, "ins": []})
        else:
            stages[-1]["ins"].append((ins, args))
    return stages


def exec_form(args):
    """The JSON array of an exec-form ENTRYPOINT/CMD."""
    v = json.loads(args)
    assert isinstance(v, list), args
    return v


def apt_install_packages(run_args):
    """Packages named by every `apt-get install` in a RUN line."""
    pkgs = []
    for cmd in re.split(r"&&|;|\|\|", run_args):
        words = shlex.split(cmd)
        if len(words) >= 2 and words[0] == "apt-get" and "install" in words:
            after = words[words.index("install") + 1:]
            pkgs += [w for w in after if not w.startswith("-")]
    return pkgs


def with_free_ports(argv, kinds):
    """argv with the port of each value of the flags in KINDS (flag -> 'udp'/'tcp')
    replaced by a free one; the host stays as written. Returns (argv, {flag: port})."""
    out, ports = list(argv), {}
    for i, a in enumerate(out[:-1]):
        if a in kinds:
            host, _, _ = out[i + 1].rpartition(":")
            port = free_port(socket.SOCK_DGRAM if kinds[a] == "udp" else socket.SOCK_STREAM)
            out[i + 1] = "%s:%d" % (host, port)
            ports[a] = port
    return out, ports


def flag_value(argv, flag):
    for i, a in enumerate(argv[:-1]):
        if a == flag:
            return argv[i + 1]
    return None


def doc_keys():
    """Every cfg.yaml key docs/configuration.md names: the options table's cfg.yaml
    column and the keys of its 'Every key at its default' example."""
    text = read("docs", "configuration.md")
    keys = set()
    for line in text.splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) > 3 and line.startswith("|") and re.fullmatch(r"`[A-Za-z.]+`", cells[2]):
            keys.add(cells[2].strip("`"))
    m = re.search(r"Every key at its default:\s*```yaml\n(.*?)```", text, re.S)
    if m:
        keys |= set(flatten(yaml.safe_load(m.group(1))))
    return keys


def flatten(d, prefix=""):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, prefix + k + "."))
        else:
            out[prefix + k] = v
    return out
