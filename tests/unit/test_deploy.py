"""The Kubernetes path, checked as far as a machine without a cluster, helm or a docker daemon allows:
the files parse, the Helm values match the Dagster chart's schema and give Dagster the run queue
dagster.yaml gives it, the manifests carry what a cluster needs and every setting the platform reads,
and the Dockerfile passes a small set of hadolint-style rules. Nothing here builds an image or talks
to a cluster (docs/kubernetes.md says what was not run)."""

import copy
import importlib
import json
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from orchestration import processes
from orchestration.settings import (
    ENV_API_FORWARDED_ALLOW_IPS,
    ENV_API_POOL_MAX,
    ENV_API_WORKERS,
    ENV_DATA_DIR,
    ENV_DATABASE_URL,
    ENV_NEO4J_PASSWORD,
    ENV_NEO4J_URI,
    ENV_NEO4J_USER,
    ENV_SERVING_URL,
    ENV_SOURCE_MODE,
    ENV_WRITER_URL,
    LOGIN_ROLES,
    PROJECT_ROOT,
    load_settings,
)
from serving.config import ServingConfig, connection_budget

DEPLOY = PROJECT_ROOT / "deploy"
HELM_VALUES = DEPLOY / "helm" / "values.yaml"
CHART_SCHEMA = DEPLOY / "helm" / "values.schema.json"
K8S = DEPLOY / "k8s"
DOCKERFILE = PROJECT_ROOT / "Dockerfile"
GUIDE = PROJECT_ROOT / "docs" / "kubernetes.md"
# The server size docs/kubernetes.md asks for; the API's share of it is checked below.
GUIDE_MAX_CONNECTIONS = 200


def load_docs(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def values() -> dict:
    return yaml.safe_load(HELM_VALUES.read_text())


def manifests() -> list[dict]:
    return [
        doc
        for path in sorted(K8S.glob("*.yaml"))
        if path.name != "kustomization.yaml"
        for doc in load_docs(path)
    ]


def find(kind: str, name: str) -> dict:
    matches = [d for d in manifests() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def pod_specs() -> list[tuple[str, dict]]:
    found = []
    for doc in manifests():
        if doc["kind"] in ("Deployment", "Job", "StatefulSet", "DaemonSet"):
            found.append((f"{doc['kind']}/{doc['metadata']['name']}", doc["spec"]["template"]["spec"]))
    return found


# --- parsing --------------------------------------------------------------------------------------


def test_every_deploy_yaml_parses_into_objects():
    paths = sorted(DEPLOY.rglob("*.yaml"))
    assert {p.name for p in paths} >= {"values.yaml", "neo4j-values.yaml", "api.yaml", "secrets.yaml"}
    for path in paths:
        docs = load_docs(path)
        assert docs and all(isinstance(d, dict) for d in docs), path


def test_manifests_have_kind_api_version_and_name_and_kustomize_lists_them_all():
    listed = yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
    for doc in manifests():
        assert doc.get("apiVersion") and doc.get("kind") and doc.get("metadata", {}).get("name"), doc


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kustomize_renders_the_manifests_offline():
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    assert sorted((d["kind"], d["metadata"]["name"]) for d in docs) == sorted(
        (d["kind"], d["metadata"]["name"]) for d in manifests()
    )
    assert {d["metadata"]["namespace"] for d in docs} == {"bizosaas"}


# --- the Helm values against the chart's schema -------------------------------------------------


def chart_validator(schema: dict, draft) -> jsonschema.protocols.Validator:
    """The chart's schema as Helm applies it to a values file that sets only what differs from the
    chart's defaults. Helm validates the defaults merged with our file: maps are merged, so keys the
    schema requires in a map are supplied by the chart's own values.yaml (not vendored: the stored
    copy of it is years older than the schema) and are not required of ours; lists replace the
    default whole, so every object reached through a list item keeps all its required keys. The
    schema's references to Kubernetes object schemas (probes, resources, env ...) point at a web
    site: they are dropped (the type beside each stays), and the manifests' own checks cover those."""
    schema = copy.deepcopy(schema)
    definitions = schema["definitions"]

    def refs(node) -> set[str]:
        found = set()
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/definitions/"):
                found.add(ref.rsplit("/", 1)[1])
            for value in node.values():
                found |= refs(value)
        elif isinstance(node, list):
            for value in node:
                found |= refs(value)
        return found

    def items_refs(node) -> set[str]:
        found = set()
        if isinstance(node, dict):
            if "items" in node:
                found |= refs(node["items"])
            for value in node.values():
                found |= items_refs(value)
        elif isinstance(node, list):
            for value in node:
                found |= items_refs(value)
        return found

    in_lists = items_refs(schema)
    while True:  # everything inside a list item is replaced along with it
        grown = in_lists | {r for name in in_lists for r in refs(definitions[name])}
        if grown == in_lists:
            break
        in_lists = grown

    def drop_required(node):
        if isinstance(node, dict):
            node.pop("required", None)
            for value in node.values():
                drop_required(value)
        elif isinstance(node, list):
            for value in node:
                drop_required(value)

    schema.pop("required")
    for name, definition in definitions.items():
        if name not in in_lists:
            drop_required(definition)
    drop_external_refs(schema)
    return draft(schema)


def drop_external_refs(node) -> None:
    if isinstance(node, dict):
        if not node.get("$ref", "#").startswith("#"):
            del node["$ref"]
        for value in node.values():
            drop_external_refs(value)
    elif isinstance(node, list):
        for value in node:
            drop_external_refs(value)


def schema_errors(data: dict) -> list[str]:
    schema = json.loads(CHART_SCHEMA.read_text())
    errors = []
    # Helm has read such schemas with draft-7 semantics and, since 3.18, with newer drafts: both must pass.
    for draft in (jsonschema.Draft7Validator, jsonschema.Draft202012Validator):
        validator = chart_validator(schema, draft)
        errors += [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(data)]
    return errors


def test_helm_values_validate_against_the_dagster_chart_schema():
    assert schema_errors(values()) == []


@pytest.mark.parametrize(
    "path, bad",
    [
        (["runLauncher", "type"], "K8sLauncher"),  # not one of the chart's launchers
        (["dagsterDaemon", "runCoordinator", "config", "customRunCoordinator", "klass"], "Queued"),
        (["dagster-user-deployments", "deployments", 0, "port"], "3030"),
        (["retention", "sensor", "purgeAfterDays", "skiped"], 7),
    ],
)
def test_the_schema_check_catches_a_wrong_value_or_a_misspelt_key(path, bad):
    data = values()
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = bad
    assert schema_errors(data), f"{path} = {bad!r} passed the schema"


def test_a_user_deployment_item_must_be_complete_because_helm_replaces_lists():
    data = values()
    del data["dagster-user-deployments"]["deployments"][0]["port"]
    assert any("port" in e for e in schema_errors(data))


def test_vendored_schema_is_the_recorded_copy():
    import hashlib

    digest = hashlib.sha256(CHART_SCHEMA.read_bytes()).hexdigest()
    assert digest in (DEPLOY / "helm" / "README.md").read_text(), "update the provenance note with the file"


# --- the same run queue as one machine ------------------------------------------------------------


def chart_instance_sections(data: dict) -> dict:
    """The dagster.yaml sections the chart renders from these values (templates/configmap-instance.yaml
    and the run coordinator helper): run_coordinator, retention, telemetry, the daemon's schedules and
    sensors threads, and additionalInstanceConfig."""
    coordinator = data["dagsterDaemon"]["runCoordinator"]
    assert coordinator["type"] == "CustomRunCoordinator"
    custom = coordinator["config"]["customRunCoordinator"]
    sections = {
        "run_coordinator": {"module": custom["module"], "class": custom["class"], "config": custom["config"]},
        "telemetry": {"enabled": data["telemetry"]["enabled"]},
    }
    retention = data["retention"]
    if retention["enabled"]:
        sections["retention"] = {
            kind: {"purge_after_days": retention[key]["purgeAfterDays"]}
            for kind, key in (
                ("schedule", "schedule"),
                ("sensor", "sensor"),
                ("auto_materialize", "autoMaterialize"),
            )
            if retention.get(key)
        }
    for kind in ("schedules", "sensors"):  # the daemon's threads (dagsterDaemon.schedules/sensors)
        if kind in data["dagsterDaemon"]:
            threads = data["dagsterDaemon"][kind]
            sections[kind] = {
                "use_threads": threads["useThreads"],
                "num_workers": threads["numWorkers"],
                "num_submit_workers": threads["numSubmitWorkers"],
            }
    return {**sections, **(data.get("additionalInstanceConfig") or {})}


def instance_concurrency(config: dict):
    """What Dagster itself makes of an instance config: validated as DagsterInstance would, then
    the run queue and pool limits it enforces."""
    from dagster._core.instance.config import ConcurrencyConfig, validate_concurrency_config
    from dagster._core.run_coordinator.queued_run_coordinator import QueuedRunCoordinator

    if "concurrency" in config:
        validate_concurrency_config(config)  # raises on run_coordinator limits beside concurrency.runs/pools
    coordinator = config["run_coordinator"]
    cls = getattr(importlib.import_module(coordinator["module"]), coordinator["class"])
    assert issubclass(cls, QueuedRunCoordinator)  # what the daemon requires to dequeue at all
    queue = cls(**(coordinator.get("config") or {})).get_run_queue_config()
    return ConcurrencyConfig.from_concurrency_settings(config.get("concurrency") or {}, queue)


def validate_instance_yaml(config: dict, tmp_path: Path, monkeypatch) -> dict:
    from dagster._core.instance.config import dagster_instance_config

    for env in ("DAGSTER_PG_URL", "BIZOSAAS_DAGSTER_STORAGE", "BIZOSAAS_DAGSTER_LOGS"):
        monkeypatch.setenv(env, str(tmp_path))
    folder = tmp_path / "instance"
    folder.mkdir(exist_ok=True)
    (folder / "dagster.yaml").write_text(yaml.safe_dump(config))
    validated, _ = dagster_instance_config(str(folder))
    return validated


def test_chart_instance_gets_the_run_queue_and_pools_of_dagster_yaml(tmp_path, monkeypatch):
    local = yaml.safe_load((PROJECT_ROOT / "dagster.yaml").read_text())
    chart = chart_instance_sections(values())
    validate_instance_yaml(local, tmp_path, monkeypatch)
    validate_instance_yaml(chart, tmp_path, monkeypatch)  # Dagster accepts what the chart would write
    ours, theirs = instance_concurrency(local), instance_concurrency(chart)
    assert theirs.run_queue_config.max_concurrent_runs == ours.run_queue_config.max_concurrent_runs
    assert theirs.run_queue_config.tag_concurrency_limits == ours.run_queue_config.tag_concurrency_limits
    assert theirs.pool_config == ours.pool_config
    assert len(ours.run_queue_config.tag_concurrency_limits) >= 1  # the per-tenant limits are there at all
    assert chart["run_coordinator"] == {**local["run_coordinator"], "config": {}}
    if "retention" in local:
        assert chart["retention"] == local["retention"]
    for kind in ("schedules", "sensors"):
        assert chart.get(kind) == local.get(kind), kind


# --- manifests: what a cluster needs ----------------------------------------------------------------


IMAGE_TAG = re.compile(r"^[\w./-]+:(?!latest$)[\w.-]+$")


def test_workloads_pin_the_one_platform_image_and_bound_their_resources():
    chart_image = values()["dagster-user-deployments"]["deployments"][0]["image"]
    image = f"{chart_image['repository']}:{chart_image['tag']}"
    assert IMAGE_TAG.match(image)
    # The webserver and the daemon submit runs through the project's run coordinator: same image.
    for service in ("dagsterWebserver", "dagsterDaemon"):
        assert values()[service]["image"] == chart_image, service
    specs = pod_specs()
    assert {name for name, _ in specs} >= {"Deployment/bizosaas-api", "Job/bizosaas-migrate"}
    for name, spec in specs:
        assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] != 0
        for container in spec["containers"]:
            assert container["image"] == image, name
            resources = container["resources"]
            assert resources["requests"]["cpu"] and resources["requests"]["memory"], name
            assert resources["limits"]["memory"], name
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, name


def test_the_api_has_probes_a_disruption_budget_and_an_autoscaler_on_it():
    api = find("Deployment", "bizosaas-api")
    container = api["spec"]["template"]["spec"]["containers"][0]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert probe in container
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"  # leaves the Service without its DB
    assert "httpGet" not in container["livenessProbe"]  # a DB outage must not restart every pod
    labels = api["spec"]["template"]["metadata"]["labels"]
    assert api["spec"]["selector"]["matchLabels"].items() <= labels.items()
    service = find("Service", "bizosaas-api")
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] in {p["name"] for p in container["ports"]}
    hpa = find("HorizontalPodAutoscaler", "bizosaas-api")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "bizosaas-api",
    }
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    pdb = find("PodDisruptionBudget", "bizosaas-api")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]  # a node drain can proceed


def test_the_api_runs_the_command_bizosaas_serve_runs(monkeypatch):
    container = find("Deployment", "bizosaas-api")["spec"]["template"]["spec"]["containers"][0]
    monkeypatch.setenv(ENV_API_FORWARDED_ALLOW_IPS, f"$({ENV_API_FORWARDED_ALLOW_IPS})")
    expected = processes.api_command("0.0.0.0", 8000, f"$({ENV_API_WORKERS})")
    assert container["command"][0] == "python" and container["command"][1:] == expected[1:]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert f"$({ENV_API_WORKERS})" in container["command"] and env[ENV_API_WORKERS].isdigit()
    assert env[ENV_API_FORWARDED_ALLOW_IPS]  # Kubernetes expands $(VAR) only from variables it defines


# --- secrets and settings ----------------------------------------------------------------------------


def secret_data() -> dict[str, dict[str, str]]:
    return {d["metadata"]["name"]: d.get("stringData", {}) for d in manifests() if d["kind"] == "Secret"}


def config_data() -> dict[str, dict[str, str]]:
    return {d["metadata"]["name"]: d["data"] for d in manifests() if d["kind"] == "ConfigMap"}


def test_secret_templates_hold_no_secret_and_agree_on_the_role_passwords():
    secrets = secret_data()
    for doc in manifests():
        if doc["kind"] == "Secret":
            assert "data" not in doc, "templates use stringData (readable placeholders)"
    for name, data in secrets.items():
        for key, value in data.items():
            assert value == "" or "CHANGE_ME" in value, f"{name}.{key} looks like a real value"
    passwords = json.loads(secrets["bizosaas-role-passwords"]["credentials.json"])
    assert sorted(passwords) == sorted(LOGIN_ROLES)
    for key, role in (("BIZOSAAS_WRITER_URL", "bizosaas_writer"), (ENV_SERVING_URL, "bizosaas_serving")):
        url = urlsplit(next(d[key] for d in secrets.values() if key in d))
        assert (url.username, url.password) == (role, passwords[role])
        assert url.path == "/" + config_data()["bizosaas-env"]["BIZOSAAS_DB_NAME"]
    assert secrets["bizosaas-db"]["BIZOSAAS_DBT_PASSWORD"] == passwords["bizosaas_transform"]
    neo4j_password = secrets["bizosaas-source-keys"][ENV_NEO4J_PASSWORD]
    assert secrets["neo4j-auth"]["NEO4J_AUTH"] == f"neo4j/{neo4j_password}"


def env_from(configmaps: list[dict], secrets: list[dict]) -> dict[str, str]:
    env, known_maps, known_secrets = {}, config_data(), secret_data()
    for ref in configmaps:
        assert ref["name"] in known_maps, f"ConfigMap {ref['name']} is not in deploy/k8s"
        env |= known_maps[ref["name"]]
    for ref in secrets:
        assert ref["name"] in known_secrets, f"Secret {ref['name']} is not in deploy/k8s"
        env |= known_secrets[ref["name"]]
    return env


def platform_reads_in_runs() -> set[str]:
    """What the code location and its runs need at start: the warehouse resource's URL, dbt's
    connection settings (its profile's env_var calls), the source mode, the data folder, Neo4j."""
    profile = (PROJECT_ROOT / "dbt_project" / "profiles.yml").read_text()
    dbt = set(re.findall(r"env_var\('(\w+)'", profile))
    assert dbt, "dbt's profile reads no environment variable?"
    return {
        ENV_WRITER_URL,
        ENV_SOURCE_MODE,
        ENV_DATA_DIR,
        ENV_NEO4J_URI,
        ENV_NEO4J_USER,
        ENV_NEO4J_PASSWORD,
    } | dbt


def test_code_location_and_runs_get_every_setting_the_platform_reads():
    data = values()
    deployment = data["dagster-user-deployments"]["deployments"][0]
    code_env = env_from(deployment["envConfigMaps"], deployment["envSecrets"])
    launcher = data["runLauncher"]["config"]["k8sRunLauncher"]
    run_env = env_from(launcher["envConfigMaps"], launcher["envSecrets"])
    for name, env in (("code location", code_env), ("runs", run_env)):
        missing = platform_reads_in_runs() - env.keys()
        assert not missing, f"{name} lacks {sorted(missing)}"
    assert code_env[ENV_SOURCE_MODE] == "live"
    # The drop folder the sensors watch is the shared volume the runs read.
    drops = str(Path(code_env[ENV_DATA_DIR]) / "drops")
    for spec in (deployment, launcher):
        assert [m["mountPath"] for m in spec["volumeMounts"]] == [drops]
        claim = spec["volumes"][0]["persistentVolumeClaim"]["claimName"]
        assert find("PersistentVolumeClaim", claim)["spec"]["accessModes"] == ["ReadWriteMany"]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", module_of_workspace(), "-a", "defs"]


def module_of_workspace() -> str:
    return yaml.safe_load((PROJECT_ROOT / "workspace.yaml").read_text())["load_from"][0]["python_module"][
        "module_name"
    ]


def test_api_pods_get_a_serving_config_the_api_accepts(monkeypatch):
    container = find("Deployment", "bizosaas-api")["spec"]["template"]["spec"]["containers"][0]
    env = env_from([r["configMapRef"] for r in container["envFrom"] if "configMapRef" in r],
                   [r["secretRef"] for r in container["envFrom"] if "secretRef" in r])  # fmt: skip
    env |= {e["name"]: e["value"] for e in container["env"]}
    for name in list(dict(__import__("os").environ)):
        if name.startswith("BIZOSAAS_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    config = ServingConfig.from_env()  # raises on a missing URL or a malformed number
    assert config.database_url == env[ENV_SERVING_URL]
    assert config.pool_max == int(env[ENV_API_POOL_MAX]) and config.pool_min <= config.pool_max
    assert urlsplit(config.database_url).username == "bizosaas_serving"  # never the writer or the admin


def test_api_connections_fit_the_server_the_guide_asks_for():
    api = find("Deployment", "bizosaas-api")
    env = {e["name"]: e["value"] for e in api["spec"]["template"]["spec"]["containers"][0]["env"]}
    hpa = find("HorizontalPodAutoscaler", "bizosaas-api")
    workers = hpa["spec"]["maxReplicas"] * int(env[ENV_API_WORKERS])
    total = workers * int(env[ENV_API_POOL_MAX])
    assert api["metadata"]["annotations"]["bizosaas.io/postgres-connections"] == str(total)
    assert connection_budget(workers, int(env[ENV_API_POOL_MAX]), GUIDE_MAX_CONNECTIONS, 3) is None
    assert f"max_connections` of at least {GUIDE_MAX_CONNECTIONS}" in GUIDE.read_text()


def test_migration_job_runs_db_start_with_the_admin_url_and_the_role_passwords(monkeypatch):
    job = find("Job", "bizosaas-migrate")
    spec = job["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert container["command"] == ["bizosaas", "db", "start"]
    env = env_from([r["configMapRef"] for r in container["envFrom"] if "configMapRef" in r],
                   [r["secretRef"] for r in container["envFrom"] if "secretRef" in r])  # fmt: skip
    assert env[ENV_DATABASE_URL].startswith("postgresql://")
    monkeypatch.setenv(ENV_DATA_DIR, env[ENV_DATA_DIR])
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    # Where `bizosaas db start` reads the role passwords from (else it invents new ones per pod).
    credentials = mounts[str(load_settings().credentials_file)]
    volume = next(v for v in spec["volumes"] if v["name"] == credentials["name"])
    assert volume["secret"]["secretName"] == "bizosaas-role-passwords"
    assert credentials["subPath"] in secret_data()["bizosaas-role-passwords"]
    assert spec["restartPolicy"] == "Never"


def test_connection_budget_errors_warns_and_passes():
    assert connection_budget(40, 10, 100, 3)[0] == "error"
    kind, message = connection_budget(5, 10, 100, 3)
    assert kind == "warning" and "50 connections" in message
    assert connection_budget(2, 10, 100, 3) is None


# --- the Dockerfile -------------------------------------------------------------------------------------


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", text)
    lines = [ln.strip() for ln in joined.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1] if " " in ln else "") for ln in lines]


SECRET_NAME = re.compile(r"(KEY|SECRET|PASSWORD|TOKEN|_URL)\b", re.I)


def lint_dockerfile(text: str) -> list[str]:
    """hadolint's rules that matter here (DL3006/DL3007 pinned base, DL3002 non-root, DL3042 pip
    cache, DL3008/DL3009/DL3015 apt hygiene, DL3020 COPY over ADD, DL3025 exec-form CMD) plus no
    secrets baked into ENV/ARG."""
    problems = []
    steps = dockerfile_instructions(text)
    for op, arg in steps:
        if op == "FROM":
            image = arg.split()[0]
            if ":" not in image or image.endswith(":latest") or not re.search(r":\d+\.\d+\.\d+", image):
                problems.append(f"base image not pinned to a full version: {image}")
        if op == "RUN":
            for command in re.split(r"&&|;", arg):
                if re.search(r"\bpip3? install\b", command) and "--no-cache-dir" not in command:
                    problems.append(f"pip install without --no-cache-dir: {command.strip()}")
                if "apt-get install" in command and (
                    "--no-install-recommends" not in command or "-y" not in command
                ):
                    problems.append(f"apt-get install without -y --no-install-recommends: {command.strip()}")
            if "apt-get install" in arg and "rm -rf /var/lib/apt/lists" not in arg:
                problems.append("apt lists left in the layer")
        if op == "ADD" and not re.search(r"https?://|\.tar", arg):
            problems.append(f"ADD for local files (use COPY): {arg}")
        if op in ("ENV", "ARG"):
            for name in re.findall(r"(\w+)=", arg) or [arg.split()[0]]:
                if SECRET_NAME.search(name):
                    problems.append(f"{op} {name}: secrets come from the cluster, never the image")
        if op in ("CMD", "ENTRYPOINT") and not arg.startswith("["):
            problems.append(f"{op} in shell form")
    users = [arg.split(":")[0] for op, arg in steps if op == "USER"]
    if not users or users[-1] in ("root", "0"):
        problems.append("the image runs as root (no final non-root USER)")
    return problems


def test_dockerfile_passes_the_lint_rules():
    assert lint_dockerfile(DOCKERFILE.read_text()) == []


def test_lint_rules_catch_what_they_are_for():
    bad = (
        "FROM python:latest\nENV ALPHAVANTAGE_API_KEY=abc\nRUN pip install x && apt-get install curl\n"
        "ADD . /app\nCMD dagster api grpc\n"
    )
    problems = " | ".join(lint_dockerfile(bad))
    expected = ["not pinned", "--no-cache-dir", "--no-install-recommends", "apt lists", "ADD", "ENV ALPHA"]
    for fragment in [*expected, "shell form", "root"]:
        assert fragment in problems, fragment


def test_dockerfile_installs_like_make_install_and_serves_the_workspace_code_location():
    text = DOCKERFILE.read_text()
    steps = dockerfile_instructions(text)
    runs = " ".join(arg for op, arg in steps if op == "RUN")
    lock_pin = re.search(r"^torch==([\w.]+)", (PROJECT_ROOT / "requirements.lock").read_text(), re.M).group(1)
    torch = runs.index(f"torch=={lock_pin.split('+')[0]}")
    assert torch < runs.index("-r /tmp/requirements.txt"), "CPU torch first, or pip pulls a CUDA build"
    assert "-c requirements.lock" in runs and "dagster-k8s==" in runs
    dagster_pin = re.search(
        r"^dagster-postgres==([\w.]+)", (PROJECT_ROOT / "requirements.lock").read_text(), re.M
    )
    assert f"dagster-k8s=={dagster_pin.group(1)}" in runs  # one release family with dagster-postgres
    cmd = json.loads(next(arg for op, arg in steps if op == "CMD"))
    assert cmd[:3] == ["dagster", "api", "grpc"] and cmd[cmd.index("-m") + 1] == module_of_workspace()
    port = int(cmd[cmd.index("-p") + 1])
    assert port == values()["dagster-user-deployments"]["deployments"][0]["port"]
    ignored = (PROJECT_ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".data", ".git", "dbt_project/target"} <= set(ignored)


def test_guide_names_files_that_exist_and_what_was_not_run():
    text = GUIDE.read_text()
    for path in set(re.findall(r"`((?:deploy|docs|bench)/[\w./-]+|Dockerfile)`", text)):
        assert (PROJECT_ROOT / path).exists(), f"the guide names {path}, which does not exist"
    assert "What was not run" in text
