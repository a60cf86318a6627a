# SPDX-License-Identifier: Apache-2.0
"""deploy/: every manifest parses and has the fields it must have; the flags the
artifacts pass are accepted by the built binary, started with the Dockerfile's
entrypoint as written (0.0.0.0, other port numbers); the Dockerfile builds with the
README's own build script and its runtime packages provide every library xrayd loads;
the systemd unit passes systemd-analyze verify; the relocatable bundle runs with no
Debian library path and needs no glibc above Amazon Linux 2023's 2.34.

No Docker engine and no cloud: the image is checked, not built; the ECS JSON is
checked with botocore's own parameter validator for RegisterTaskDefinition.
"""

import json
import os
import re
import shlex
import shutil
import socket
import tarfile
import time
import unittest

import harness
from harness import IntegrationCase, Proc, clean_env, free_port, http_get, http_post, wait_for

import botocore.session  # noqa: E402  (harness cleans the environment first)
import botocore.validate  # noqa: E402
import yaml  # noqa: E402
from deploy_checks import (DEPLOY, GLIBC_MAX, GLIBCXX_MAX, HEADER, HOST_LIB, RCVBUF,  # noqa: E402
                           apt_install_packages, doc_keys, dockerfile_stages, dpkg_depends_closure,
                           dpkg_owner, exec_form, flag_value, flatten, ldd, load_yaml_all, read,
                           run, symbol_versions, with_free_ports)


class DeployTest(IntegrationCase):
    def setUp(self):
        super().setUp()
        self.bin = harness.xrayd_bin()

    # -- helpers -----------------------------------------------------------------

    def start(self, argv, name, health_port, env=None):
        """Start argv (xrayd with exactly these arguments) and wait for /healthz."""
        p = Proc(name, argv, env or clean_env(self.tmp, {
            "AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:9"}), self.tmp)
        self._procs.append(p)
        self.addCleanup(p.stop)
        url = "http://127.0.0.1:%d/healthz" % health_port
        wait_for(lambda: not p.alive() or http_get(url)[0] == 200, 15, 0.1, name + " /healthz")
        self.assertTrue(p.alive(), "%s exited at start:\n%s" % (name, p.output()[-3000:]))
        return p

    def dockerfile(self):
        return dockerfile_stages(read("deploy", "Dockerfile"))

    def entrypoint(self):
        for ins, args in self.dockerfile()[-1]["ins"]:
            if ins == "ENTRYPOINT":
                return exec_form(args)
        self.fail("no ENTRYPOINT in the runtime stage")

    def daemonset(self):
        docs = load_yaml_all("deploy", "kubernetes", "daemonset.yaml")
        return {d["kind"]: d for d in docs}

    # -- every artifact parses ---------------------------------------------------

    def test_every_artifact_parses(self):
        seen = []
        for base, _, files in os.walk(DEPLOY):
            for f in files:
                path = os.path.join(base, f)
                if f.endswith(".json"):
                    with open(path, encoding="utf-8") as fh:
                        self.assertIsInstance(json.load(fh), dict, path)
                    seen.append(f)
                elif f.endswith((".yaml", ".yml", ".config")):
                    with open(path, encoding="utf-8") as fh:
                        text = fh.read()
                    # Plain YAML: no CloudFormation short-form tags (!Ref, !Sub, ...).
                    self.assertIsNone(re.search(r"(^|\s)!\w", text), path)
                    docs = [d for d in yaml.safe_load_all(text) if d is not None]
                    self.assertTrue(docs, path)
                    seen.append(f)
        for want in ("daemon-task-definition.json", "sidecar-task-definition.json",
                     "task-role-policy.json", "daemonset.yaml", "service.yaml", "cfg.yaml",
                     "xrayd.config"):
            self.assertIn(want, seen)

    # -- Dockerfile --------------------------------------------------------------

    def test_dockerfile_shape(self):
        stages = self.dockerfile()
        self.assertEqual(len(stages), 2, "multi-stage: build and runtime")
        build, runtime = stages
        self.assertEqual(build["from"], "debian:12")
        self.assertEqual(runtime["from"], "debian:12-slim")
        ins = dict((i, a) for i, a in runtime["ins"] if i != "RUN")
        user = ins.get("USER", "")
        self.assertNotRegex(user, r"^(0|root)(:|$)", "runtime user must not be root")
        self.assertTrue(user, "runtime stage sets a USER")
        self.assertEqual(set(ins["EXPOSE"].split()), {"2000/udp", "2000/tcp"})
        hc = re.sub(r"^(--\S+\s+)*", "", ins["HEALTHCHECK"])
        self.assertTrue(hc.startswith("CMD "), hc)
        hc_argv = exec_form(hc[4:])
        self.assertEqual(hc_argv[:2], ["xrayd", "--health-check"])
        ep = self.entrypoint()
        self.assertEqual(ep[0], "xrayd")
        self.assertRegex(flag_value(ep, "-b"), r"^0\.0\.0\.0:2000$")
        self.assertRegex(flag_value(ep, "-t"), r"^0\.0\.0\.0:2000$")
        self.assertRegex(flag_value(ep, "--api-address"), r"^127\.0\.0\.1:\d+$")
        # The probe goes to the TCP side's port.
        self.assertEqual(hc_argv[2].rpartition(":")[2], "2000")
        # Multi-arch: no instruction names an architecture.
        text = " ".join(a for s in stages for _, a in s["ins"])
        self.assertNotRegex(text, r"x86_64|amd64|aarch64|arm64|i386|/lib64")

    def test_dockerfile_builds_with_readme_commands(self):
        """The README's command is scripts/run; scripts/run builds with scripts/build,
        and the Dockerfile's build stage runs the same script and copies what it built."""
        readme = read("README.md")
        self.assertRegex(readme, r"(?m)^\s+scripts/run\s*$")
        run_script = read("scripts", "run")
        build_script = read("scripts", "build")
        self.assertRegex(run_script, r"(?m)^scripts/build\s*$")
        self.assertNotIn("cmake", run_script, "scripts/run builds only through scripts/build")
        self.assertRegex(run_script, r"exec build/release/daemon/xrayd ")
        self.assertIn("cmake -S . -B build/release", build_script)
        self.assertIn("--target xrayd", build_script)
        build = self.dockerfile()[0]
        runs = [a for i, a in build["ins"] if i == "RUN"]
        self.assertTrue(any(re.search(r"(^|&&\s*)scripts/build(\s|$)", r) for r in runs), runs)
        self.assertFalse(any("cmake" in r for r in runs),
                         "the build stage runs scripts/build, not cmake of its own")
        self.assertTrue(any("build/release/daemon/xrayd" in r for r in runs), runs)
        copies = [a for i, a in self.dockerfile()[1]["ins"] if i == "COPY"]
        self.assertTrue(any(c.startswith("--from=build ") for c in copies), copies)

    def test_runtime_packages_provide_every_library(self):
        runtime = self.dockerfile()[1]
        pkgs = []
        for ins, args in runtime["ins"]:
            if ins == "RUN":
                pkgs += apt_install_packages(args)
        self.assertIn("ca-certificates", pkgs)
        for p in pkgs:  # real package names: each is installed on this build host
            self.assertEqual(run(["dpkg-query", "-W", p]).returncode, 0, "unknown package " + p)
        # debian:12-slim has libc6; everything else must come from the list.
        closure = dpkg_depends_closure(pkgs + ["libc6"])
        needed = run(["readelf", "-d", self.bin]).stdout
        direct = set(re.findall(r"\(NEEDED\)\s+Shared library: \[(\S+)\]", needed))
        self.assertIn("libcurl.so.4", direct)
        libs = ldd(self.bin)
        self.assertGreater(len(libs), 5)
        for soname, path in libs:
            self.assertIsNotNone(path, soname + " not found by ldd")
            owner = dpkg_owner(path)
            self.assertIsNotNone(owner, "no Debian package ships " + path)
            if soname in direct and owner != "libc6":
                self.assertIn(owner, pkgs, "%s (%s) is needed directly: list %s in the "
                              "runtime stage" % (soname, path, owner))
            self.assertIn(owner, closure, "%s comes from %s, which the runtime stage's "
                          "packages do not pull in" % (path, owner))

    # -- the flags of every artifact ---------------------------------------------

    def artifact_argvs(self):
        """{artifact: argv after 'xrayd'} of every command line the artifacts hold."""
        ep = self.entrypoint()[1:]
        ds = self.daemonset()["DaemonSet"]["spec"]["template"]["spec"]["containers"][0]
        out = {"Dockerfile ENTRYPOINT": ep, "DaemonSet": ep + ds.get("args", [])}
        for f in ("daemon-task-definition.json", "sidecar-task-definition.json"):
            td = json.loads(read("deploy", "ecs", f))
            for c in td["containerDefinitions"]:
                if c["name"] == "xrayd":
                    out[f] = ep + c.get("command", [])
                    out[f + " healthCheck"] = c["healthCheck"]["command"][2:]
        unit = read("deploy", "systemd", "xrayd.service")
        exec_start = re.search(r"(?m)^ExecStart=(\S+)\s+(.*)$", unit)
        out["xrayd.service"] = shlex.split(exec_start.group(2))
        return out

    def test_help_lists_every_flag_the_artifacts_use(self):
        r = run([self.bin, "--help"])
        self.assertEqual(r.returncode, 0, r.stderr)
        helptext = r.stdout + r.stderr
        for where, argv in self.artifact_argvs().items():
            for a in argv:
                if a.startswith("-"):
                    name = a.split("=", 1)[0]
                    self.assertRegex(helptext, r"(^|[\s,])%s\b" % re.escape(name),
                                     "%s: %s is not in xrayd --help" % (where, name))
        r = run([self.bin, "--no-such-flag"])
        self.assertEqual(r.returncode, 2)

    def test_entrypoint_real_start(self):
        """The image's entrypoint as written, plus the DaemonSet's args and the ECS
        command, with other port numbers: UDP and the TCP side on 0.0.0.0, the read
        API on loopback only, /metrics on its own port, the HEALTHCHECK command works."""
        ds = self.daemonset()["DaemonSet"]["spec"]["template"]["spec"]["containers"][0]
        ecs = json.loads(read("deploy", "ecs", "daemon-task-definition.json"))
        ecs_cmd = ecs["containerDefinitions"][0]["command"]
        argv = [self.bin] + self.entrypoint()[1:] + ds["args"] + ecs_cmd
        argv, ports = with_free_ports(argv, {"-b": "udp", "-t": "tcp", "--api-address": "tcp",
                                             "--metrics-address": "tcp"})
        self.assertEqual(flag_value(argv, "-b").rpartition(":")[0], "0.0.0.0")
        self.assertEqual(flag_value(argv, "--metrics-address").rpartition(":")[0], "0.0.0.0")
        x = self.start(argv, "entrypoint", ports["-t"])
        tcp = "http://127.0.0.1:%d" % ports["-t"]
        api = "http://127.0.0.1:%d" % ports["--api-address"]
        metrics = "http://127.0.0.1:%d" % ports["--metrics-address"]

        # A segment over UDP reaches the read API, which answers on loopback only.
        now = int(time.time())
        tid = "1-%08x-%024x" % (now, 0xdeb10)
        doc = {"trace_id": tid, "id": "0123456789abcdef", "name": "deploy",
               "start_time": now, "end_time": now + 0.01}
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.sendto(HEADER + json.dumps(doc).encode(), ("127.0.0.1", ports["-b"]))
        s.close()
        body = json.dumps({"TraceIds": [tid]}).encode()

        def fetched():
            st, b = http_post(api + "/Traces", body)
            return st == 200 and json.loads(b).get("Traces")
        traces = wait_for(fetched, 10, 0.2, "the trace on the API address")
        self.assertEqual(traces[0]["Id"], tid)
        self.assertEqual(http_post(tcp + "/Traces", body)[0], 404,
                         "the read API must not answer on the 0.0.0.0 TCP side")
        st, text = http_get(metrics + "/metrics")
        self.assertEqual(st, 200)
        self.assertIn(b"# TYPE ", text)
        self.assertEqual(http_get(tcp + "/metrics")[0], 404)
        self.assertEqual(http_get(api + "/metrics")[0], 404)
        self.assertEqual(http_get(metrics + "/healthz")[0], 200)  # the kubelet's probe port

        # The HEALTHCHECK and ECS healthCheck command, on the TCP port in use.
        hc = [self.bin, "--health-check", "127.0.0.1:%d" % ports["-t"]]
        self.assertEqual(run(hc, env=clean_env(self.tmp), timeout=15).returncode, 0)
        self.assertIn("API on 127.0.0.1:%d" % ports["--api-address"], x.output())
        self.assertEqual(x.stop(), 0)
        self.assertEqual(run(hc, env=clean_env(self.tmp), timeout=15).returncode, 1,
                         "--health-check must fail when nothing answers")

    # -- cfg.yaml ----------------------------------------------------------------

    def test_cfg_yaml_has_every_key_commented(self):
        keys = doc_keys()
        self.assertIn("Socket.UDPAddress", keys)
        self.assertIn("Xrayd.APIAddress", keys)
        helptext = run([self.bin, "--help"]).stdout
        helptext = re.sub(r"\s+", " ", helptext)
        keys |= set(re.findall(r"\[cfg\.yaml: ([A-Za-z.]+)\]", helptext))
        m = re.search(r"cfg\.yaml also sets (.*?);", helptext)
        if m:
            keys |= {k.strip() for k in m.group(1).split(",")}
        text = read("deploy", "cfg.yaml")
        have = flatten(yaml.safe_load(text))
        missing = sorted(keys - set(have))
        self.assertEqual(missing, [], "deploy/cfg.yaml lacks keys of docs/configuration.md "
                         "or xrayd --help")
        # Every key with a value has a comment on the line above it.
        lines = text.splitlines()
        for i, line in enumerate(lines):
            m = re.match(r"^\s*([A-Za-z]+):\s*\S", line)
            if m:
                self.assertTrue(lines[i - 1].strip().startswith("#"),
                                "cfg.yaml line %d (%s) has no comment above it" %
                                (i + 1, m.group(1)))

    def test_cfg_yaml_accepted_with_c(self):
        cfg = os.path.join(DEPLOY, "cfg.yaml")
        udp, tcp = free_port(socket.SOCK_DGRAM), free_port()
        argv = [self.bin, "-c", cfg, "-o", "-b", "127.0.0.1:%d" % udp, "-t", "127.0.0.1:%d" % tcp]
        x = self.start(argv, "cfg", tcp)
        out = x.output()
        self.assertNotIn("[Warn]", out.split("receive buffer")[0])
        self.assertNotIn("[Error]", out)
        self.assertEqual(x.stop(), 0)
        # A control: the same file with one unknown key is refused.
        bad = os.path.join(self.tmp, "bad.yaml")
        with open(bad, "w") as f:
            f.write(read("deploy", "cfg.yaml") + "NoSuchKey: 1\n")
        r = run([self.bin, "-c", bad, "-o", "-b", "127.0.0.1:%d" % udp, "-t",
                 "127.0.0.1:%d" % tcp], env=clean_env(self.tmp), timeout=15)
        self.assertEqual(r.returncode, 1)
        self.assertIn("NoSuchKey", r.stdout + r.stderr)

    # -- ECS ---------------------------------------------------------------------

    def ecs_validate(self, params):
        model = botocore.session.get_session().get_service_model("ecs")
        shape = model.operation_model("RegisterTaskDefinition").input_shape
        return botocore.validate.ParamValidator().validate(params, shape)

    def test_ecs_task_definitions(self):
        for f in ("daemon-task-definition.json", "sidecar-task-definition.json"):
            td = json.loads(read("deploy", "ecs", f))
            report = self.ecs_validate(td)
            self.assertFalse(report.has_errors(), "%s: %s" % (f, report.generate_report()))
            # The validator can fail: an unknown key is reported.
            self.assertTrue(self.ecs_validate(dict(td, containerDefinition=[])).has_errors())
            names = {c["name"]: c for c in td["containerDefinitions"]}
            x = names["xrayd"]
            maps = {(m["containerPort"], m["protocol"]) for m in x["portMappings"]}
            self.assertEqual(maps, {(2000, "udp"), (2000, "tcp")}, f)
            self.assertEqual(x["healthCheck"]["command"][:3], ["CMD", "xrayd", "--health-check"])
            self.assertNotIn(x.get("user", "10001").split(":")[0], ("0", "root"))
            self.assertIn("linuxParameters", x)
            self.assertTrue(td["taskRoleArn"].startswith("arn:aws:iam::"))
        daemon = json.loads(read("deploy", "ecs", "daemon-task-definition.json"))
        self.assertEqual(daemon["networkMode"], "host")
        self.assertIn("EC2", daemon["requiresCompatibilities"])
        for m in daemon["containerDefinitions"][0]["portMappings"]:
            self.assertEqual(m["hostPort"], 2000)
        side = json.loads(read("deploy", "ecs", "sidecar-task-definition.json"))
        self.assertEqual(side["networkMode"], "awsvpc")
        apps = [c for c in side["containerDefinitions"] if c["name"] != "xrayd"]
        self.assertEqual(len(apps), 1)
        env = {e["name"]: e["value"] for e in apps[0]["environment"]}
        self.assertEqual(env["AWS_XRAY_DAEMON_ADDRESS"], "127.0.0.1:2000")
        self.assertIn({"containerName": "xrayd", "condition": "HEALTHY"}, apps[0]["dependsOn"])

    def test_task_role_policy(self):
        pol = json.loads(read("deploy", "ecs", "task-role-policy.json"))
        self.assertEqual(pol["Version"], "2012-10-17")
        sts = pol["Statement"]
        xray = [s for s in sts if any(a.startswith("xray:") for a in self.actions(s))]
        self.assertEqual(len(xray), 1)
        self.assertEqual(set(self.actions(xray[0])),
                         {"xray:PutTraceSegments", "xray:PutTelemetryRecords",
                          "xray:GetSamplingRules", "xray:GetSamplingTargets",
                          "xray:GetSamplingStatisticSummaries"})
        # The rest only for the metrics sinks, each in statements of its own.
        cloudwatch, amp = set(), set()
        for s in sts:
            self.assertEqual(s["Effect"], "Allow")
            if s is not xray[0]:
                self.assertRegex(s["Sid"], r"^OnlyWith(CloudWatchSink|RemoteWriteToAMP)")
                (cloudwatch if "CloudWatch" in s["Sid"] else amp).update(self.actions(s))
        self.assertEqual(cloudwatch, {"logs:CreateLogGroup", "logs:CreateLogStream",
                                      "logs:PutLogEvents", "cloudwatch:PutMetricData"})
        self.assertEqual(amp, {"aps:RemoteWrite"})

    @staticmethod
    def actions(statement):
        a = statement["Action"]
        return [a] if isinstance(a, str) else a

    # -- systemd -----------------------------------------------------------------

    def test_systemd_unit(self):
        text = read("deploy", "systemd", "xrayd.service")
        unit = {}
        for line in text.splitlines():
            if "=" in line and not line.startswith("#"):
                k, _, v = line.partition("=")
                unit.setdefault(k.strip(), []).append(v.strip())
        exec_start = unit["ExecStart"][0].split()
        self.assertEqual(exec_start[1:], ["-c", "/etc/amazon/xray/cfg.yaml"])
        self.assertTrue(unit.get("DynamicUser") == ["yes"] or unit.get("User"))
        for k, v in (("ProtectSystem", "strict"), ("NoNewPrivileges", "yes"),
                     ("Restart", "on-failure"), ("AmbientCapabilities", "CAP_NET_ADMIN"),
                     ("CapabilityBoundingSet", "CAP_NET_ADMIN")):
            self.assertEqual(unit.get(k), [v], k)
        self.assertGreaterEqual(int(unit["LimitNOFILE"][0]), 4096)

        exe = shutil.which("systemd-analyze")
        self.assertIsNotNone(exe, "systemd-analyze not found: apt-get install -y systemd")
        # A root with the unit, the binary at ExecStart's path and systemd's own units.
        root = os.path.join(self.tmp, "root")
        os.makedirs(os.path.join(root, "etc", "systemd", "system"))
        binpath = os.path.join(root, exec_start[0].lstrip("/"))
        os.makedirs(os.path.dirname(binpath))
        shutil.copy(self.bin, binpath)
        shutil.copytree("/usr/lib/systemd/system", os.path.join(root, "usr/lib/systemd/system"),
                        symlinks=True)
        dst = os.path.join(root, "etc", "systemd", "system", "xrayd.service")
        shutil.copy(os.path.join(DEPLOY, "systemd", "xrayd.service"), dst)
        r = run([exe, "verify", "--root=" + root, "xrayd.service"])
        self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ""))
        # A control: verify complains about a bad value (it exits 0 on warnings,
        # hence the check on its output above).
        with open(dst, "a") as f:
            f.write("ProtectSystem=sometimes\n")
        r = run([exe, "verify", "--root=" + root, "xrayd.service"])
        self.assertIn("ProtectSystem", r.stdout + r.stderr)

    # -- Beanstalk ---------------------------------------------------------------

    def test_beanstalk_config(self):
        cfg = yaml.safe_load(read("deploy", "beanstalk", ".ebextensions", "xrayd.config"))
        self.assertIs(cfg["option_settings"]["aws:elasticbeanstalk:xray"]["XRayEnabled"], False)
        files = cfg["files"]
        self.assertEqual(files["/etc/systemd/system/xrayd.service"]["content"],
                         read("deploy", "systemd", "xrayd.service"),
                         "the embedded unit is deploy/systemd/xrayd.service")
        cmds = cfg["container_commands"]
        self.assertTrue(any("systemctl enable" in c["command"] for c in cmds.values()))

        # Its cfg.yaml is accepted (ports and the spool moved off this host's paths by
        # flags, which beat the file).
        path = os.path.join(self.tmp, "eb-cfg.yaml")
        with open(path, "w") as f:
            f.write(files["/etc/amazon/xray/cfg.yaml"]["content"])
        udp, tcp = free_port(socket.SOCK_DGRAM), free_port()
        x = self.start([self.bin, "-c", path, "-o", "-b", "127.0.0.1:%d" % udp, "-t",
                        "127.0.0.1:%d" % tcp, "--spool-dir", os.path.join(self.tmp, "spool")],
                       "eb", tcp)
        self.assertEqual(x.stop(), 0)

        # The install command, run against a bundle in a scratch /opt.
        install = [c["command"] for c in cmds.values() if "tar -xzf" in c["command"]][0]
        stage = os.path.join(self.tmp, "eb-stage")
        tarball = self.make_bundle(os.path.join(stage, "xrayd"))
        opt = os.path.join(self.tmp, "opt")
        os.makedirs(opt)
        script = install.replace("/opt/xrayd", opt + "/xrayd")
        r = run(["bash", "-c", script], cwd=stage, env=clean_env(self.tmp))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("xrayd version", r.stdout)
        self.assertTrue(os.access(os.path.join(opt, "xrayd", "bin", "xrayd"), os.X_OK))
        self.assertTrue(os.path.basename(tarball).startswith("xrayd-"))

    # -- Kubernetes --------------------------------------------------------------

    def test_kubernetes(self):
        docs = self.daemonset()
        sa = docs["ServiceAccount"]
        self.assertRegex(sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
                         r"^arn:aws:iam::\d{12}:role/")
        ds = docs["DaemonSet"]
        self.assertEqual(ds["apiVersion"], "apps/v1")
        pod = ds["spec"]["template"]
        self.assertEqual(pod["spec"]["serviceAccountName"], sa["metadata"]["name"])
        labels = pod["metadata"]["labels"]
        self.assertEqual(ds["spec"]["selector"]["matchLabels"], labels)
        c = pod["spec"]["containers"][0]
        ports = {(p["containerPort"], p["protocol"]): p for p in c["ports"]}
        for proto in ("UDP", "TCP"):
            self.assertEqual(ports[(2000, proto)]["hostPort"], 2000)
        for k in ("cpu", "memory"):
            self.assertIn(k, c["resources"]["limits"])
            self.assertIn(k, c["resources"]["requests"])
        names = {p.get("name"): p for p in c["ports"]}
        for probe in ("livenessProbe", "readinessProbe"):
            g = c[probe]["httpGet"]
            self.assertEqual(g["path"], "/healthz")
            port = names[g["port"]] if isinstance(g["port"], str) else {"containerPort": g["port"]}
            self.assertEqual(port["containerPort"], 2000)
        # /metrics on its own port, announced to Prometheus; the API stays on loopback.
        metrics = flag_value(c["args"], "--metrics-address")
        host, _, mport = metrics.rpartition(":")
        self.assertEqual(host, "0.0.0.0")
        ann = pod["metadata"]["annotations"]
        self.assertEqual(ann["prometheus.io/scrape"], "true")
        self.assertEqual(ann["prometheus.io/port"], mport)
        self.assertEqual(ann["prometheus.io/path"], "/metrics")
        self.assertIn(int(mport), [p["containerPort"] for p in c["ports"]])
        self.assertIsNone(flag_value(c["args"], "--api-address"))  # the image's loopback one
        self.assertNotEqual(int(mport), 2000)
        sc = pod["spec"]["securityContext"]
        self.assertIs(sc["runAsNonRoot"], True)
        self.assertNotEqual(sc["runAsUser"], 0)

        svc = load_yaml_all("deploy", "kubernetes", "service.yaml")
        self.assertEqual(len(svc), 1)
        svc = svc[0]
        self.assertEqual(svc["kind"], "Service")
        self.assertEqual(svc["metadata"]["namespace"], ds["metadata"]["namespace"])
        for k, v in svc["spec"]["selector"].items():
            self.assertEqual(labels[k], v)
        self.assertEqual({(p["port"], p["protocol"]) for p in svc["spec"]["ports"]},
                         {(2000, "UDP"), (2000, "TCP")})
        for p in svc["spec"]["ports"]:
            self.assertIn(p["targetPort"], names)

    # -- the relocatable bundle --------------------------------------------------

    def make_bundle(self, out):
        self.assertIsNotNone(shutil.which("patchelf"), "patchelf: apt-get install -y patchelf")
        r = run([os.path.join(DEPLOY, "bundle.sh"), "--binary", self.bin, "--out", out],
                env=clean_env(self.tmp))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return r.stdout.strip().splitlines()[-1]

    def test_bundle(self):
        tarball = self.make_bundle(os.path.join(self.tmp, "dist"))
        version = run([self.bin, "--version"]).stdout.split()[2]
        arch = run(["dpkg", "--print-architecture"]).stdout.strip()
        name = "xrayd-%s-linux-%s" % (version, arch)
        self.assertEqual(os.path.basename(tarball), name + ".tar.gz")
        unpack = os.path.join(self.tmp, "elsewhere")
        with tarfile.open(tarball) as t:
            self.assertTrue(all(m.name.startswith(name) for m in t.getmembers()))
            t.extractall(unpack)
        top = os.path.join(unpack, name)
        exe = os.path.join(top, "bin", "xrayd")
        libdir = os.path.join(top, "lib")
        bundled = set(os.listdir(libdir))

        # What is bundled: every library xrayd loads except the host's own, nothing else.
        want = {s for s, _ in ldd(self.bin) if not HOST_LIB.match(s)}
        self.assertIn("libcurl.so.4", want)
        self.assertEqual(bundled, want)
        rpath = run(["readelf", "-d", exe]).stdout
        self.assertRegex(rpath, r"R(UN)?PATH\).*\[\$ORIGIN/\.\./lib\]")

        # Symbol versions: nothing above Amazon Linux 2023's glibc and libstdc++.
        for f in [exe] + [os.path.join(libdir, b) for b in sorted(bundled)]:
            g = symbol_versions(f, "GLIBC")
            self.assertTrue(g, f)
            self.assertLessEqual(max(g), GLIBC_MAX, "%s needs GLIBC_%s" %
                                 (f, ".".join(map(str, max(g)))))
            gx = symbol_versions(f, "GLIBCXX")
            if gx:
                self.assertLessEqual(max(gx), GLIBCXX_MAX, f)

        # Runs from the unpacked folder with LD_LIBRARY_PATH unset, libraries from lib/.
        env = clean_env(self.tmp)
        env.pop("LD_LIBRARY_PATH", None)
        r = run([exe, "--version"], env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(version, r.stdout)
        for soname, path in ldd(exe, env=env):
            if soname in bundled:
                self.assertEqual(os.path.dirname(os.path.realpath(path)),
                                 os.path.realpath(libdir), soname)
        udp, tcp = free_port(socket.SOCK_DGRAM), free_port()
        x = self.start([exe, "-o", "-m", "16", "-b", "127.0.0.1:%d" % udp, "-t",
                        "127.0.0.1:%d" % tcp], "bundle", tcp, env=env)
        with open("/proc/%d/maps" % x.pid) as f:
            mapped = {line.split()[-1] for line in f if ".so" in line.split()[-1]}
        from_bundle = {os.path.basename(m) for m in mapped
                       if os.path.dirname(os.path.realpath(m)) == os.path.realpath(libdir)}
        self.assertEqual(from_bundle, bundled)
        for m in mapped:
            base = os.path.basename(m)
            self.assertTrue(base in from_bundle or HOST_LIB.match(base),
                            "%s loaded from outside the bundle" % m)
        self.assertEqual(x.stop(), 0)

    @unittest.skipUnless(os.geteuid() == 0, "needs root (chroot, setpriv)")
    def test_bundle_without_debian_libraries(self):
        """In a chroot holding only glibc and the bundle (and /proc, which $ORIGIN
        needs), xrayd starts and answers; as an unprivileged user with systemd's
        mechanism (ambient CAP_NET_ADMIN, no new privileges) it gets its full receive
        buffer, and without it only net.core.rmem_max."""
        tarball = self.make_bundle(os.path.join(self.tmp, "dist"))
        root = os.path.join(self.tmp, "chroot")
        os.makedirs(os.path.join(root, "proc"))
        with tarfile.open(tarball) as t:
            t.extractall(root)
        name = os.path.basename(tarball)[:-len(".tar.gz")]
        for soname, path in ldd(self.bin):
            if HOST_LIB.match(soname):
                dst = os.path.join(root, path.lstrip("/"))
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                shutil.copy(path, dst)
        self.assertFalse(os.path.exists(os.path.join(root, "usr")))
        udp, tcp = free_port(socket.SOCK_DGRAM), free_port()
        inner = ["/%s/bin/xrayd" % name, "-o", "-m", "16", "-b", "127.0.0.1:%d" % udp,
                 "-t", "127.0.0.1:%d" % tcp]
        script = "mount -t proc proc %s/proc && exec chroot %s %s" % (
            shlex.quote(root), shlex.quote(root), " ".join(inner))
        x = self.start(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                       "chroot", tcp)
        st, body = http_get("http://127.0.0.1:%d/healthz" % tcp)
        self.assertEqual(json.loads(body)["status"], "ok")
        self.assertEqual(x.stop(), 0)

        # systemd's AmbientCapabilities=CAP_NET_ADMIN + NoNewPrivileges, as setpriv does it.
        os.chmod(self.tmp, 0o755)
        for d, _, _ in os.walk(root):
            os.chmod(d, 0o755)
        exe = os.path.join(root, name, "bin", "xrayd")
        with open("/proc/sys/net/core/rmem_max") as f:
            rmem_max = int(f.read())
        for caps in (True, False):
            udp, tcp = free_port(socket.SOCK_DGRAM), free_port()
            capargs = (["--inh-caps", "+net_admin", "--ambient-caps", "+net_admin",
                        "--bounding-set", "-all,+net_admin"] if caps else
                       ["--inh-caps", "-all", "--bounding-set", "-all"])
            argv = (["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"] +
                    capargs + ["--no-new-privs", exe, "-o", "-m", "16", "-b",
                               "127.0.0.1:%d" % udp, "-t", "127.0.0.1:%d" % tcp])
            p = self.start(argv, "setpriv-%s" % caps, tcp)
            m = re.search(r"UDP receive buffer: (\d+) bytes granted of (\d+) asked", p.output())
            self.assertIsNotNone(m, p.output())
            granted, asked = int(m.group(1)), int(m.group(2))
            self.assertEqual(asked, RCVBUF)
            if caps:
                self.assertEqual(granted, RCVBUF, "ambient CAP_NET_ADMIN must give the buffer")
            elif rmem_max < RCVBUF:
                self.assertEqual(granted, rmem_max)
            self.assertEqual(p.stop(), 0)


if __name__ == "__main__":
    harness.main()
