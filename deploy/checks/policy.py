#!/usr/bin/env python3
"""Policy test over rendered manifests: every container has readiness and liveness probes,
resource requests and limits, a hardened securityContext and a pinned image tag, and every
Service port points at a port its pods really listen on. Exits non-zero listing violations.

usage: policy.py RENDERED.yaml [...]
"""
import sys

import yaml

WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet"}


def containers_of(obj):
    spec = obj["spec"]["template"]["spec"]
    return spec, spec.get("containers", []) + spec.get("initContainers", [])


def check_workload(obj, problems):
    name = f'{obj["kind"]}/{obj["metadata"]["name"]}'
    pod, containers = containers_of(obj)
    psc = pod.get("securityContext", {})
    if not psc.get("runAsNonRoot"):
        problems.append(f"{name}: pod securityContext.runAsNonRoot is not true")
    if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        problems.append(f"{name}: pod seccompProfile is not RuntimeDefault")
    if pod.get("automountServiceAccountToken") is not False:
        problems.append(f"{name}: the service account token is mounted")
    for c in containers:
        cn = f'{name}/{c["name"]}'
        for probe in ("readinessProbe", "livenessProbe"):
            if probe not in c:
                problems.append(f"{cn}: no {probe}")
        res = c.get("resources", {})
        for part in ("requests", "limits"):
            for r in ("cpu", "memory"):
                if r not in res.get(part, {}):
                    problems.append(f"{cn}: no {part}.{r}")
        sc = c.get("securityContext", {})
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{cn}: allowPrivilegeEscalation is not false")
        if sc.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{cn}: readOnlyRootFilesystem is not true")
        if "ALL" not in sc.get("capabilities", {}).get("drop", []):
            problems.append(f"{cn}: capabilities are not all dropped")
        if sc.get("privileged"):
            problems.append(f"{cn}: privileged")
        image = c.get("image", "")
        tag = image.rsplit("/", 1)[-1].partition(":")[2]
        if "@sha256:" not in image and (not tag or tag == "latest"):
            problems.append(f"{cn}: image {image!r} has no pinned tag")


def pod_ports(obj):
    ports = {}
    _, containers = containers_of(obj)
    for c in containers:
        for p in c.get("ports", []):
            ports[p["containerPort"]] = p
            if "name" in p:
                ports[p["name"]] = p
    return ports


def check_services(objs, problems):
    workloads = [o for o in objs if o["kind"] in WORKLOADS]
    for svc in (o for o in objs if o["kind"] == "Service"):
        name = f'Service/{svc["metadata"]["name"]}'
        selector = svc["spec"].get("selector", {})
        targets = [
            w
            for w in workloads
            if selector
            and all(
                w["spec"]["template"]["metadata"].get("labels", {}).get(k) == v
                for k, v in selector.items()
            )
        ]
        if not targets:
            problems.append(f"{name}: selects no workload")
            continue
        for port in svc["spec"].get("ports", []):
            target = port.get("targetPort", port["port"])
            for w in targets:
                if target not in pod_ports(w):
                    problems.append(
                        f'{name}: port {port.get("name", port["port"])} targets {target!r}, '
                        f'which {w["kind"]}/{w["metadata"]["name"]} does not listen on'
                    )


def main(paths):
    objs = []
    for path in paths:
        with open(path) as f:
            objs += [d for d in yaml.safe_load_all(f) if d]
    problems = []
    for obj in objs:
        if obj["kind"] in WORKLOADS:
            check_workload(obj, problems)
    check_services(objs, problems)
    workloads = sum(1 for o in objs if o["kind"] in WORKLOADS)
    if problems:
        print("\n".join(problems))
        print(f"policy: {len(problems)} violations")
        return 1
    print(f"policy: {len(objs)} objects, {workloads} workloads, no violations")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
