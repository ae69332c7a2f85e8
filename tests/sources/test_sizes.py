"""Every source stays readable: no module under corral/sources over 400 lines, no function over 60."""

from __future__ import annotations

import ast
from pathlib import Path

import corral.sources

SOURCES = Path(corral.sources.__file__).resolve().parent
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def test_no_source_module_over_400_lines() -> None:
    long = {
        str(path.relative_to(SOURCES)): count
        for path in sorted(SOURCES.rglob("*.py"))
        if (count := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def test_no_source_function_over_60_lines() -> None:
    long = {}
    for path in sorted(SOURCES.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(SOURCES)}:{node.name}"] = length
    assert long == {}
