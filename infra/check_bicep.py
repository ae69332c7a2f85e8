"""Fail on Bicep the compiler (or Azure) would reject, without the compiler.

Usage: python infra/check_bicep.py FILE_OR_FOLDER...

Runs with checkov's environment (`make iac-check`), reading each file with the parser checkov
itself uses (pycep), and checks the rules known to bite:

* BCP065: `utcNow()` and `newGuid()` are allowed only as a parameter's default value.
* Every resource type is declared with an API version that exists (API_VERSIONS below, from the
  Azure resource reference, https://learn.microsoft.com/azure/templates/), and carries the
  properties its type requires (REQUIRED).
* The Function App runs on Flex Consumption: no Y1/Dynamic plan, a functionAppConfig, and none of
  the app settings Flex Consumption refuses (the content share among them).
* A Defender for Cloud automation exports only its own subscription.

Then, when `bicep` or `az` is on PATH, the real compiler builds each file as well.
Prints one line per problem, `file: where: rule: message`, and exits 1 if there is any.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pycep import BicepParser

# Versions per type that the Azure resource reference lists; a version not here is either a typo
# or one not yet reviewed for this deployment: add it with the reference page open.
API_VERSIONS: dict[str, frozenset[str]] = {
    "Microsoft.Storage/storageAccounts": frozenset({"2023-01-01", "2023-04-01", "2023-05-01", "2024-01-01"}),
    "Microsoft.Storage/storageAccounts/blobServices": frozenset({"2023-01-01", "2023-05-01", "2024-01-01"}),
    "Microsoft.Storage/storageAccounts/blobServices/containers": frozenset({"2023-01-01", "2023-05-01", "2024-01-01"}),
    "Microsoft.Storage/storageAccounts/queueServices": frozenset({"2023-01-01", "2023-05-01", "2024-01-01"}),
    "Microsoft.Storage/storageAccounts/managementPolicies": frozenset({"2023-01-01", "2023-05-01", "2024-01-01"}),
    "Microsoft.EventHub/namespaces": frozenset({"2021-11-01", "2022-10-01-preview", "2024-01-01"}),
    "Microsoft.EventHub/namespaces/eventhubs": frozenset({"2021-11-01", "2022-10-01-preview", "2024-01-01"}),
    "Microsoft.EventHub/namespaces/eventhubs/consumergroups": frozenset({"2021-11-01", "2024-01-01"}),
    "Microsoft.EventHub/namespaces/eventhubs/authorizationRules": frozenset({"2021-11-01", "2024-01-01"}),
    "Microsoft.KeyVault/vaults": frozenset({"2022-07-01", "2023-02-01", "2023-07-01", "2024-11-01"}),
    "Microsoft.KeyVault/vaults/secrets": frozenset({"2022-07-01", "2023-02-01", "2023-07-01", "2024-11-01"}),
    "Microsoft.OperationalInsights/workspaces": frozenset({"2022-10-01", "2023-09-01", "2025-02-01"}),
    "Microsoft.Insights/components": frozenset({"2020-02-02"}),
    "Microsoft.Insights/dataCollectionRules": frozenset({"2022-06-01", "2023-03-11"}),
    "Microsoft.Web/serverfarms": frozenset({"2023-12-01", "2024-04-01", "2024-11-01"}),
    "Microsoft.Web/sites": frozenset({"2023-12-01", "2024-04-01", "2024-11-01"}),
    "Microsoft.Web/sites/basicPublishingCredentialsPolicies": frozenset({"2023-12-01", "2024-04-01", "2024-11-01"}),
    "Microsoft.Authorization/roleAssignments": frozenset({"2022-04-01"}),
    "Microsoft.Security/automations": frozenset({"2019-01-01-preview", "2023-12-01-preview"}),
    "Microsoft.EventGrid/systemTopics": frozenset({"2021-12-01", "2022-06-15", "2025-02-15"}),
}

# Property paths (dotted, under the resource body) each type must set; `existing` resources are exempt.
REQUIRED: dict[str, tuple[str, ...]] = {
    "Microsoft.Storage/storageAccounts": ("name", "location", "kind", "sku.name"),
    "Microsoft.EventHub/namespaces": ("name", "location", "sku.name"),
    "Microsoft.KeyVault/vaults": ("name", "location", "properties.tenantId", "properties.sku.name"),
    "Microsoft.KeyVault/vaults/secrets": ("name", "properties"),
    "Microsoft.OperationalInsights/workspaces": ("name", "location"),
    "Microsoft.Insights/components": ("name", "location", "kind", "properties.Application_Type"),
    "Microsoft.Web/serverfarms": ("name", "location", "sku.name", "sku.tier"),
    "Microsoft.Web/sites": (
        "name",
        "location",
        "properties.serverFarmId",
        "properties.functionAppConfig.deployment.storage.type",
        "properties.functionAppConfig.deployment.storage.value",
        "properties.functionAppConfig.deployment.storage.authentication.type",
        "properties.functionAppConfig.runtime.name",
        "properties.functionAppConfig.runtime.version",
        "properties.functionAppConfig.scaleAndConcurrency.maximumInstanceCount",
        "properties.functionAppConfig.scaleAndConcurrency.instanceMemoryMB",
    ),
    "Microsoft.Authorization/roleAssignments": ("name", "properties.principalId", "properties.roleDefinitionId"),
    "Microsoft.EventGrid/systemTopics": ("name", "location", "properties.source", "properties.topicType"),
    "Microsoft.Security/automations": (
        "name",
        "location",
        "properties.scopes",
        "properties.sources",
        "properties.actions",
    ),
}

# Functions Bicep allows only in a parameter's default value (BCP065).
DEFAULT_ONLY = {"utc_now": "utcNow()", "new_guid": "newGuid()"}
DEFAULT_ONLY_TEXT = re.compile(r"\b(utcNow|newGuid)\s*\(")
# App settings Flex Consumption refuses or ignores
# (https://learn.microsoft.com/azure/azure-functions/functions-app-settings#flex-consumption-plan-deprecations).
FLEX_REFUSED_SETTINGS = frozenset(
    {
        "FUNCTIONS_EXTENSION_VERSION",
        "FUNCTIONS_WORKER_RUNTIME",
        "FUNCTIONS_WORKER_RUNTIME_VERSION",
        "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
        "WEBSITE_CONTENTSHARE",
        "WEBSITE_SKIP_CONTENTSHARE_VALIDATION",
        "WEBSITE_CONTENTOVERVNET",
        "WEBSITE_RUN_FROM_PACKAGE",
        "WEBSITE_NODE_DEFAULT_VERSION",
        "SCM_DO_BUILD_DURING_DEPLOYMENT",
        "ENABLE_ORYX_BUILD",
    }
)


def walk(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    """Every (path, value) pair under `value`, depth first."""
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from walk(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from walk(item, f"{path}[{index}]")


def lookup(body: dict[str, Any], dotted: str) -> Any:
    """The value at a dotted path, or None."""
    value: Any = body
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def default_only_functions(template: dict[str, Any]) -> Iterator[str]:
    """BCP065: where utcNow()/newGuid() appear outside a parameter default."""
    for section in ("variables", "resources", "modules", "outputs"):
        for path, value in walk(template.get(section) or {}, section):
            if isinstance(value, dict) and isinstance(value.get("function"), dict):
                name = value["function"].get("type")
                if name in DEFAULT_ONLY:
                    yield f"{path}: BCP065: {DEFAULT_ONLY[name]} is allowed only as a parameter's default value"
            elif isinstance(value, str) and (found := DEFAULT_ONLY_TEXT.search(value)):
                yield f"{path}: BCP065: {found[1]}() is allowed only as a parameter's default value"
    for name, parameter in (template.get("parameters") or {}).items():
        outside_default = {k: v for k, v in parameter.items() if k != "default"}
        for path, value in walk(outside_default, f"parameters.{name}"):
            function = value.get("function") if isinstance(value, dict) else None
            if isinstance(function, dict) and function.get("type") in DEFAULT_ONLY:
                yield f"{path}: BCP065: {DEFAULT_ONLY[function['type']]} is allowed only as a parameter's default value"


def resource_rules(template: dict[str, Any]) -> Iterator[str]:
    """API versions, required properties, Flex Consumption, automation scopes."""
    for name, resource in (template.get("resources") or {}).items():
        kind, version = resource.get("type"), resource.get("api_version")
        where = f"resources.{name} ({kind}@{version})"
        if kind not in API_VERSIONS:
            yield f"{where}: api-version: {kind} is not in the reviewed list; add its versions from the reference"
            continue
        if version not in API_VERSIONS[kind]:
            known = ", ".join(sorted(API_VERSIONS[kind]))
            yield f"{where}: api-version: {version} is not a published version of {kind} (known: {known})"
        if resource.get("existing"):
            continue
        body = resource.get("config") or {}
        if isinstance(body, dict) and "loop_type" in body:  # [for x in y: {...}]
            body = body.get("config") or {}
        if isinstance(body, dict) and "condition" in body and "config" in body:  # if (...) {...}
            body = body["config"]
        for required in REQUIRED.get(kind, ()):
            if lookup(body, required) is None:
                yield f"{where}: required property: {required} is missing"
        yield from _flex(where, kind, body, template.get("variables") or {})
        if kind == "Microsoft.Security/automations":
            for path, value in walk(lookup(body, "properties.scopes") or [], "properties.scopes"):
                if path.endswith(".scopePath") and not _is_own_subscription(value):
                    yield f"{where}: {path}: an automation exports only its own subscription: use subscription().id"


def _is_own_subscription(value: Any) -> bool:
    function = value.get("function") if isinstance(value, dict) else None
    return (
        isinstance(function, dict)
        and function.get("type") == "subscription"
        and (function.get("parameters") or {}).get("subscription_id") is None
        and function.get("property_name") == "id"
    )


def _flex(where: str, kind: str, body: dict[str, Any], variables: dict[str, Any]) -> Iterator[str]:
    if kind == "Microsoft.Web/serverfarms":
        sku = body.get("sku") or {}
        if sku.get("name") == "Y1" or sku.get("tier") == "Dynamic":
            yield f"{where}: plan: Linux Consumption (Y1/Dynamic) is retired for new apps; use FC1/FlexConsumption"
    if kind == "Microsoft.Web/sites":
        settings = lookup(body, "properties.siteConfig.appSettings")
        # The settings are often variables joined with concat(): follow plain variable names once.
        named = [v for _, v in walk(settings, "") if isinstance(v, str) and v in variables]
        sources = [("properties.siteConfig.appSettings", settings)]
        sources += [(f"variables.{name}", variables[name].get("value")) for name in named]
        for origin, value_tree in sources:
            for path, value in walk(value_tree or [], origin):
                if path.endswith(".name") and isinstance(value, str) and value in FLEX_REFUSED_SETTINGS:
                    yield f"{where}: {path}: Flex Consumption refuses the app setting {value}"
        if lookup(body, "properties.siteConfig.linuxFxVersion") is not None:
            yield f"{where}: linuxFxVersion: Flex Consumption takes the runtime from functionAppConfig.runtime"


def files(arguments: list[str]) -> list[Path]:
    """The .bicep files named or under the folders named."""
    found: list[Path] = []
    for argument in arguments:
        path = Path(argument)
        found += sorted(path.rglob("*.bicep")) if path.is_dir() else [path]
    return found


def compile_with(path: Path) -> str | None:
    """Build with the Bicep compiler when one is installed; return its errors, or None if none ran."""
    bicep, az = shutil.which("bicep"), shutil.which("az")
    with tempfile.TemporaryDirectory() as out:
        if bicep:
            argv = [bicep, "build", str(path), "--outdir", out]
        elif az:
            argv = [az, "bicep", "build", "--file", str(path), "--outdir", out]
        else:
            return None
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300)
    return done.stderr.strip() if done.returncode else ""


def check(path: Path) -> list[str]:
    """Every problem in one file."""
    template = BicepParser().parse(text=path.read_text())
    problems = [*default_only_functions(template), *resource_rules(template)]
    compiled = compile_with(path)
    if compiled:
        problems.append(f"bicep build: {compiled}")
    return [f"{path}: {problem}" for problem in problems]


def main(argv: list[str]) -> int:
    """Check every file; print the problems; 1 if there is any."""
    problems = [problem for path in files(argv) for problem in check(path)]
    for problem in problems:
        print(problem)
    compiler = "bicep build" if shutil.which("bicep") or shutil.which("az") else "no Bicep compiler on PATH"
    print(f"check_bicep: {len(files(argv))} file(s), {len(problems)} problem(s) ({compiler})")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
