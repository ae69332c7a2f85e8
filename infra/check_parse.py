"""Fail when checkov reported a parsing error in any IaC file (it only warns by itself).

Usage: python infra/check_parse.py <folder with checkov's results_json.json files>...
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    """Print every parsing error and the files scanned; return 1 if any file failed to parse."""
    failed = False
    for folder in argv:
        root = Path(folder)
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for report_path in files:
            reports = json.loads(report_path.read_text())
            for report in reports if isinstance(reports, list) else [reports]:
                if not isinstance(report, dict) or "summary" not in report:
                    continue
                summary = report["summary"]
                kind = report.get("check_type", "?")
                print(
                    f"{report_path}: {kind}: {summary.get('resource_count', 0)} resources, "
                    f"{summary.get('parsing_errors', 0)} parsing errors"
                )
                if summary.get("parsing_errors"):
                    failed = True
                    for path in report.get("results", {}).get("parsing_errors", []):
                        print(f"  cannot parse {path}")
                if kind == "bicep" and not summary.get("resource_count"):
                    print("  no Bicep resource was parsed")
                    failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
