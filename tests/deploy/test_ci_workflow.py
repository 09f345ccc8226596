"""The hosted CI workflow, ``.github/workflows/ci.yaml``: valid by GitHub's workflow schema, and shaped as
the project needs (the README's test command, lint, an image, a scan of that image, a manual deploy).

The schema check is ``check-jsonschema`` with its bundled ``vendor.github-workflows`` schema, run without
network like the other deploy tools (see ``test_manifests``); a missing tool skips here and fails in CI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.deploy_tools import ROOT, run, tool

WORKFLOW = ROOT / ".github" / "workflows" / "ci.yaml"
JOBS = {"test", "lint", "image", "scan", "deploy"}

Doc = dict[str, Any]


def schema_check(path: Path):
    return run([tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(path)])


@pytest.fixture(scope="module")
def workflow() -> Doc:
    return yaml.safe_load(WORKFLOW.read_text())


def commands(job: Doc) -> str:
    return "\n".join(step.get("run", "") for step in job["steps"])


def actions(job: Doc) -> list[str]:
    return [step["uses"] for step in job["steps"] if "uses" in step]


def step_using(job: Doc, action: str) -> Doc:
    """The job's first step using ``action``."""
    return next(step for step in job["steps"] if step.get("uses", "").startswith(f"{action}@"))


def triggers(workflow: Doc) -> Doc:
    # PyYAML reads the bare key ``on`` as the boolean True (YAML 1.1).
    return workflow.get("on", workflow.get(True))


def test_the_workflow_passes_the_github_workflow_schema() -> None:
    result = schema_check(WORKFLOW)

    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_rejects_a_workflow_with_an_unknown_job_key(tmp_path: Path) -> None:
    broken = tmp_path / "ci.yaml"
    broken.write_text(WORKFLOW.read_text().replace("    runs-on: ubuntu-latest\n", "    runs_on: ubuntu-latest\n", 1))
    assert broken.read_text() != WORKFLOW.read_text()

    result = schema_check(broken)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "runs_on" in result.stdout + result.stderr


def test_the_workflow_has_every_job_and_runs_on_pushes_pull_requests_and_by_hand(workflow: Doc) -> None:
    assert set(workflow["jobs"]) == JOBS
    assert {"push", "pull_request", "workflow_dispatch"} <= set(triggers(workflow))
    assert workflow["concurrency"]["cancel-in-progress"], "superseded runs are cancelled"


def test_permissions_are_least_privilege(workflow: Doc) -> None:
    assert workflow["permissions"] == {"contents": "read"}
    for name, job in workflow["jobs"].items():
        granted = job.get("permissions", {})
        writes = {scope for scope, level in granted.items() if level == "write"}
        assert writes <= ({"packages"} if name == "image" else set()), f"{name} may write {writes}"


def test_actions_are_pinned_to_a_major_version(workflow: Doc) -> None:
    for job in workflow["jobs"].values():
        for action in actions(job):
            _, _, version = action.partition("@")
            assert version.startswith("v") and version[1:].split(".")[0].isdigit(), action


def test_the_test_job_runs_the_readme_test_command(workflow: Doc) -> None:
    test = workflow["jobs"]["test"]

    assert commands(test).strip() == "scripts/test"
    assert "scripts/test" in (ROOT / "README.md").read_text()


def test_the_lint_job_runs_ruff_lint_imports_and_hadolint(workflow: Doc) -> None:
    run_lines = commands(workflow["jobs"]["lint"])

    for command in ("ruff check src tests bench", "ruff format --check", "lint-imports", "hadolint Containerfile"):
        assert command in run_lines, command


def test_the_scan_job_scans_the_image_the_image_job_built(workflow: Doc) -> None:
    image, scan = workflow["jobs"]["image"], workflow["jobs"]["scan"]
    build = step_using(image, "docker/build-push-action")["with"]
    uploaded = step_using(image, "actions/upload-artifact")["with"]
    downloaded = step_using(scan, "actions/download-artifact")["with"]
    scanner = step_using(scan, "anchore/scan-action")["with"]

    assert build["file"] == "Containerfile"
    assert "type=docker" in build["outputs"]
    assert "push" not in build, "the scanned build stays local; main pushes it after"
    assert scan["needs"] == "image"
    assert downloaded["name"] == uploaded["name"]
    assert "docker load" in commands(scan)
    assert scanner["image"] == build["tags"], "the scanned tag is the one built"
    assert scanner["fail-build"] is True
    assert scanner["severity-cutoff"] == "critical"


def test_the_image_is_pushed_from_main_only(workflow: Doc) -> None:
    image = workflow["jobs"]["image"]
    pushing = [step for step in image["steps"] if step.get("with", {}).get("push")]

    assert pushing
    for step in pushing:
        assert "refs/heads/main" in step["if"]
        assert "github.event_name == 'push'" in step["if"]


def test_the_deploy_job_is_manual_approved_and_applies_the_chosen_overlay(workflow: Doc) -> None:
    deploy = workflow["jobs"]["deploy"]
    overlay_input = triggers(workflow)["workflow_dispatch"]["inputs"]["overlay"]

    assert deploy["if"] == "github.event_name == 'workflow_dispatch'"
    assert deploy["environment"] == "production"
    assert {"test", "lint", "scan"} <= set(deploy["needs"])
    assert 'kubectl apply -k "deploy/overlays/$OVERLAY"' in commands(deploy)
    assert set(overlay_input["options"]) == {path.name for path in (ROOT / "deploy" / "overlays").iterdir()}
    assert "secrets.KUBECONFIG" in yaml.safe_dump(deploy)
