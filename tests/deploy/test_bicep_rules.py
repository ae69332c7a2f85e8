"""infra/check_bicep.py passes infra/azure and catches each compile rule it claims to check.

The checker runs in the IaC tools' environment (.venv-iac, made by `make iac-check`, which CI runs
before the tests), because it reads Bicep with checkov's own parser.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECKER = ROOT / "infra" / "check_bicep.py"
IAC_PYTHON = ROOT / ".venv-iac" / "bin" / "python"

GOOD_APP = """
param stamp string = utcNow()
resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: 'p'
  location: 'westeurope'
  kind: 'functionapp'
  sku: { name: 'FC1', tier: 'FlexConsumption' }
  properties: { reserved: true }
}
resource app 'Microsoft.Web/sites@2024-04-01' = {
  name: 'a'
  location: 'westeurope'
  properties: {
    serverFarmId: plan.id
    functionAppConfig: {
      deployment: {
        storage: { type: 'blobContainer', value: 'https://s/c', authentication: { type: 'SystemAssignedIdentity' } }
      }
      scaleAndConcurrency: { maximumInstanceCount: 40, instanceMemoryMB: 2048 }
      runtime: { name: 'python', version: '3.11' }
    }
    siteConfig: { appSettings: [ { name: 'STAMP', value: stamp } ] }
  }
}
"""


def run_checker(*paths: Path) -> subprocess.CompletedProcess[str]:
    """The checker, in the environment `make iac-check` sets up."""
    if not IAC_PYTHON.exists():
        pytest.fail(f"{IAC_PYTHON} is missing: run `make iac-check` first (CI does)")
    return subprocess.run(
        [str(IAC_PYTHON), str(CHECKER), *map(str, paths)], capture_output=True, text=True, timeout=300, check=False
    )


def test_infra_azure_passes() -> None:
    """The repository's Bicep breaks none of the rules."""
    run = run_checker(ROOT / "infra" / "azure")
    assert run.returncode == 0, run.stdout + run.stderr


def test_a_compliant_flex_app_passes(tmp_path: Path) -> None:
    """utcNow() as a parameter default and a complete Flex Consumption app are fine."""
    (tmp_path / "good.bicep").write_text(GOOD_APP)
    run = run_checker(tmp_path / "good.bicep")
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("value: stamp", "value: utcNow()"), "BCP065: utcNow()"),
        (("value: stamp", "value: '${newGuid()}'"), "BCP065: newGuid()"),
        (("Microsoft.Web/sites@2024-04-01", "Microsoft.Web/sites@2024-13-01"), "not a published version"),
        (("sku: { name: 'FC1', tier: 'FlexConsumption' }", "sku: { name: 'Y1', tier: 'Dynamic' }"), "Y1/Dynamic"),
        (("runtime: { name: 'python', version: '3.11' }", ""), "functionAppConfig.runtime.name is missing"),
        (("name: 'STAMP'", "name: 'WEBSITE_CONTENTSHARE'"), "refuses the app setting WEBSITE_CONTENTSHARE"),
    ],
)
def test_each_rule_bites(tmp_path: Path, change: tuple[str, str], expected: str) -> None:
    """One broken rule per file, each reported by name."""
    old, new = change
    assert old in GOOD_APP
    (tmp_path / "bad.bicep").write_text(GOOD_APP.replace(old, new))
    run = run_checker(tmp_path / "bad.bicep")
    assert run.returncode == 1
    assert expected in run.stdout, run.stdout


def test_an_automation_exporting_another_subscription_is_refused(tmp_path: Path) -> None:
    """Microsoft.Security/automations exports only its own subscription."""
    automation = """
param scopes array
resource export 'Microsoft.Security/automations@2023-12-01-preview' = {
  name: 'x'
  location: 'westeurope'
  properties: {
    scopes: [for scope in scopes: { scopePath: scope }]
    sources: []
    actions: []
  }
}
"""
    (tmp_path / "export.bicep").write_text(automation)
    run = run_checker(tmp_path / "export.bicep")
    assert run.returncode == 1
    assert "exports only its own subscription" in run.stdout, run.stdout


def test_the_function_app_has_no_basic_auth_publishing() -> None:
    """Deployment uses Entra ID: the SCM and FTP publishing user name and password are turned off."""
    source = (ROOT / "infra" / "azure" / "main.bicep").read_text()
    kind = "sites/basicPublishingCredentialsPolicies@"
    policies = [b for b in source.split("\nresource ")[1:] if kind in b.split("\n")[0]]
    by_name = {re.search(r"name: '(\w+)'", b)[1]: b for b in policies}  # type: ignore[index]
    assert set(by_name) == {"scm", "ftp"}
    for body in by_name.values():
        assert "parent: functionApp" in body and "properties: { allow: false }" in body


def test_the_sentinel_dcr_role_is_assigned_in_the_dcr_s_own_resource_group() -> None:
    """The DCR is found where its id says, not in Corral's resource group: the module's scope comes from the id."""
    source = (ROOT / "infra" / "azure" / "main.bicep").read_text()
    [module] = [b for b in source.split("\nmodule ")[1:] if b.startswith("sentinelPublisher ")]
    module = module[: module.index("\n}\n")]
    assert re.search(r"var sentinelDcrParts = split\(sentinelDcrId, '/'\)", source)
    scope = re.search(r"^  scope: resourceGroup\((.*)\)$", module, re.MULTILINE)
    assert scope, "without a scope the module looks the DCR up in Corral's own resource group"
    # split('/') of /subscriptions/<sub>/resourceGroups/<rg>/providers/...: [2] is <sub>, [4] is <rg>.
    assert "sentinelDcrParts[2]" in scope[1] and "sentinelDcrParts[4]" in scope[1]
    assert scope[1].index("sentinelDcrParts[2]") < scope[1].index("sentinelDcrParts[4]")
    assert "dcrName: last(sentinelDcrParts)" in module
