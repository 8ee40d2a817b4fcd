"""The layout is the data flow: channels -> core -> knowledge. Read from the imports themselves (ast)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from .conftest import ROOT

PACKAGE = ROOT / "service"
CHANNELS = ("service.native", "service.order_checks", "service.cds_hooks")
PLATFORM = ("service.web", "service.audit", "service.app", "service.main", "service.serve")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, module: str | None = None) -> set[str]:
    """Every module this file imports, relative imports resolved (function-level imports included)."""
    module = module or module_name(path)
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)   # "from . import x" imports x
    return found


def within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", [p for p in MODULES if within(module_name(p), ("service.core", "service.knowledge"))],
                         ids=lambda p: module_name(p))
def test_core_and_knowledge_import_no_channel_and_no_platform(path):
    bad = {m for m in imports_of(path) if within(m, CHANNELS + PLATFORM)}
    assert not bad, f"{module_name(path)} imports {sorted(bad)}"


@pytest.mark.parametrize("path", [p for p in MODULES if within(module_name(p), ("service.knowledge",))],
                         ids=lambda p: module_name(p))
def test_knowledge_imports_no_core(path):
    bad = {m for m in imports_of(path) if within(m, ("service.core",))}
    assert not bad, f"{module_name(path)} imports {sorted(bad)}"


@pytest.mark.parametrize("channel", CHANNELS)
def test_no_channel_imports_another(channel):
    others = tuple(c for c in CHANNELS if c != channel)
    for path in MODULES:
        if within(module_name(path), (channel,)):
            bad = {m for m in imports_of(path) if within(m, others)}
            assert not bad, f"{module_name(path)} imports {sorted(bad)}"


def test_the_checker_sees_a_violation(tmp_path):
    """Relative imports are resolved: a core module reaching for a channel would be caught."""
    probe = tmp_path / "probe.py"
    probe.write_text("from ..order_checks import models\nfrom . import facts\nimport service.web.auth\n")
    found = imports_of(probe, "service.core.probe")
    assert {"service.order_checks.models", "service.core.facts", "service.web.auth"} <= found
    assert within("service.order_checks.models", CHANNELS) and within("service.web.auth", PLATFORM)


def test_app_only_assembles():
    """service/app.py defines no route: every endpoint lives in its channel or in web/."""
    tree = ast.parse((PACKAGE / "app.py").read_text(encoding="utf-8"))
    decorators = [d for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                  for d in node.decorator_list]
    routes = [d for d in decorators if isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute)
              and d.func.attr in ("get", "post", "put", "delete", "patch")]
    assert not routes


AUTHORING = ("service.authoring",)


@pytest.mark.parametrize("path", [p for p in MODULES if within(module_name(p), ("service.core", "service.knowledge"))],
                         ids=lambda p: module_name(p))
def test_core_and_knowledge_import_no_authoring_tool(path):
    bad = {m for m in imports_of(path) if within(m, AUTHORING)}
    assert not bad, f"{module_name(path)} imports {sorted(bad)}"


@pytest.mark.parametrize("path", [p for p in MODULES if within(module_name(p), AUTHORING)], ids=lambda p: module_name(p))
def test_the_authoring_tools_use_no_channel_and_no_web(path):
    """ldn-rules decides through core, like every channel; it reads the audit store, never serves."""
    bad = {m for m in imports_of(path) if within(m, CHANNELS + ("service.web", "service.app"))}
    assert not bad, f"{module_name(path)} imports {sorted(bad)}"
