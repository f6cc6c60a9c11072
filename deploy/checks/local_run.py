#!/usr/bin/env python3
"""Manifest-driven local run: render an overlay, start every Deployment/StatefulSet container
as a local process exactly as its pod would run (the image's entrypoint `pronet` with the
container's args and environment from the ConfigMap and Secret manifests), with Service DNS
names mapped to loopback ports; probe each service the way its readinessProbe says; make one
GetFeed call through the feed service; stop everything with SIGTERM. Proves the manifests and
the binary agree.

usage: local_run.py RENDERED.yaml --binary PATH [--secret NAME.KEY=VALUE ...]
                    [--external NAME:PORT=HOST:PORT ...] [--env KEY=VALUE ...]

--external maps a dependency run out of band (NATS) to where it listens here; --env overrides a
variable of every container (a stream prefix of the run's own on a shared NATS).
"""
import argparse
import base64
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

import yaml

WORKLOADS = {"Deployment", "StatefulSet"}


_handed_out = set()


def free_port():
    """A loopback port free now and never handed out before in this run. Below the kernel's
    ephemeral range (32768+), so no outgoing connection takes it before the server binds it;
    a port the kernel picks (bind to 0) may be picked again, or taken meanwhile."""
    while True:
        port = random.randrange(12000, 30000)
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port


def grpcurl(addr, method, data, token=None):
    cmd = ["grpcurl", "-plaintext", "-max-time", "5"]
    if token:
        cmd += ["-H", f"authorization: Bearer {token}"]
    cmd += ["-d", json.dumps(data), addr, method]
    return subprocess.run(cmd, capture_output=True, text=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("rendered")
    ap.add_argument("--binary", required=True)
    ap.add_argument("--secret", action="append", default=[], help="NAME.KEY=VALUE")
    ap.add_argument("--external", action="append", default=[], help="NAME:PORT=HOST:PORT")
    ap.add_argument("--env", action="append", default=[], help="KEY=VALUE")
    args = ap.parse_args()
    externals = dict(e.split("=", 1) for e in args.external)
    overrides = dict(e.split("=", 1) for e in args.env)

    with open(args.rendered) as f:
        objs = [d for d in yaml.safe_load_all(f) if d]
    configmaps = {o["metadata"]["name"]: o.get("data", {}) for o in objs if o["kind"] == "ConfigMap"}
    secrets = {}
    for o in objs:
        if o["kind"] == "Secret":
            data = {k: base64.b64decode(v).decode() for k, v in o.get("data", {}).items()}
            data.update(o.get("stringData", {}))
            secrets[o["metadata"]["name"]] = data
    for s in args.secret:
        key, _, value = s.partition("=")
        name, _, k = key.partition(".")
        secrets.setdefault(name, {})[k] = value

    services = {o["metadata"]["name"]: o for o in objs if o["kind"] == "Service"}
    workloads = [o for o in objs if o["kind"] in WORKLOADS]
    # One loopback port per Service; the workload it selects listens there.
    local = {name: free_port() for name in services}

    def workload_service(w):
        labels = w["spec"]["template"]["metadata"].get("labels", {})
        for name, svc in services.items():
            sel = svc["spec"].get("selector", {})
            if sel and all(labels.get(k) == v for k, v in sel.items()):
                return name
        sys.exit(f'no Service selects {w["kind"]}/{w["metadata"]["name"]}')

    dns = re.compile(r"\b(" + "|".join(map(re.escape, services)) + r")(\.[A-Za-z0-9.-]+)?:(\d+)\b")

    def to_loopback(value):
        for name, addr in externals.items():
            value = re.sub(r"\b" + re.escape(name) + r"\b", addr, value)
        return dns.sub(lambda m: f"127.0.0.1:{local[m.group(1)]}", value)

    work = tempfile.mkdtemp(prefix="pronet-local-run-")
    procs = []
    probes = []
    metrics_urls = {}
    feed_addr = profile_addr = None
    jwt_env = {}
    try:
        for w in workloads:
            svc = workload_service(w)
            port = local[svc]
            for c in w["spec"]["template"]["spec"]["containers"]:
                env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
                for src in c.get("envFrom", []):
                    if "configMapRef" in src:
                        env.update(configmaps[src["configMapRef"]["name"]])
                    if "secretRef" in src:
                        env.update(secrets[src["secretRef"]["name"]])
                for e in c.get("env", []):
                    if "value" in e:
                        env[e["name"]] = e["value"]
                    elif "secretKeyRef" in e["valueFrom"]:
                        ref = e["valueFrom"]["secretKeyRef"]
                        if ref["name"] not in secrets or ref["key"] not in secrets[ref["name"]]:
                            sys.exit(f'{svc}: Secret {ref["name"]}/{ref["key"]} is neither in the manifests nor given with --secret')
                        env[e["name"]] = secrets[ref["name"]][ref["key"]]
                    elif "configMapKeyRef" in e["valueFrom"]:
                        ref = e["valueFrom"]["configMapKeyRef"]
                        env[e["name"]] = configmaps[ref["name"]][ref["key"]]
                env.update(overrides)
                env = {k: to_loopback(str(v)) for k, v in env.items()}
                argv = list(c.get("args", []))
                for i, a in enumerate(argv):
                    if i > 0 and argv[i - 1] == "--listen":
                        argv[i] = f"127.0.0.1:{port}"
                    elif i > 0 and argv[i - 1] == "--data-dir":
                        argv[i] = os.path.join(work, svc)
                    elif i > 0 and argv[i - 1] == "--metrics-listen":
                        metrics_port = free_port()
                        argv[i] = f"127.0.0.1:{metrics_port}"
                        metrics_urls[svc] = f"http://127.0.0.1:{metrics_port}/metrics"
                    else:
                        argv[i] = to_loopback(a)
                log = open(os.path.join(work, f"{svc}.log"), "w")
                print(f"start {svc}: pronet {' '.join(argv)}  (listening on 127.0.0.1:{port})")
                procs.append((svc, subprocess.Popen([args.binary] + argv, env=env, stdout=log, stderr=log)))
                probe = c.get("readinessProbe", {}).get("grpc")
                if not probe:
                    sys.exit(f"{svc}: no gRPC readinessProbe to check")
                probes.append((svc, f"127.0.0.1:{port}", probe.get("service", "")))
                if "feed" in argv:
                    feed_addr, jwt_env = f"127.0.0.1:{port}", env
                if "profile" in argv:
                    profile_addr = f"127.0.0.1:{port}"

        for svc, addr, service in probes:
            deadline = time.time() + 90
            while True:
                r = grpcurl(addr, "grpc.health.v1.Health/Check", {"service": service})
                if '"SERVING"' in r.stdout:
                    print(f"ready {svc}: {addr} {service or '(server)'} SERVING")
                    break
                for name, p in procs:
                    if p.poll() is not None:
                        sys.exit(f"{name} exited with {p.returncode}; see {work}/{name}.log")
                if time.time() > deadline:
                    sys.exit(f"{svc} not ready: {r.stdout}{r.stderr}")
                time.sleep(0.5)

        member = "local-run-member"
        token = subprocess.run(
            [args.binary, "token", "--member-id", member, "--data-dir", work],
            env=jwt_env, capture_output=True, text=True, check=True,
        ).stdout.strip()
        r = grpcurl(profile_addr, "pronet.profile.v1.ProfileService/CreateProfile",
                    {"profile": {"handle": "local_run", "display_name": "Local Run"}}, token)
        if r.returncode != 0:
            sys.exit(f"CreateProfile failed: {r.stdout}{r.stderr}")
        # The feed learns of the new profile from its event a few milliseconds later.
        deadline = time.time() + 10
        while True:
            r = grpcurl(feed_addr, "pronet.feed.v1.FeedService/GetFeed",
                        {"member_id": member, "page_size": 5}, token)
            if r.returncode == 0 or "NotFound" not in r.stdout + r.stderr or time.time() > deadline:
                break
            time.sleep(0.05)
        if r.returncode != 0:
            sys.exit(f"GetFeed through the feed service failed: {r.stdout}{r.stderr}")
        print(f"GetFeed through the feed service: OK {r.stdout.strip()[:80]}")
        import urllib.request
        for svc, url in metrics_urls.items():
            text = urllib.request.urlopen(url, timeout=5).read().decode()
            if "pronet_grpc_requests_total" not in text and svc in ("feed", "profile"):
                sys.exit(f"{svc}: {url} has no pronet_grpc_requests_total")
            print(f"metrics {svc}: {url} ({len(text.splitlines())} lines)")
    finally:
        for _, p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for name, p in procs:
            try:
                code = p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                code = "killed"
            if code not in (0, -signal.SIGTERM):
                print(f"{name} exited with {code}; log in {work}/{name}.log")
    print("local run passed")


if __name__ == "__main__":
    main()
