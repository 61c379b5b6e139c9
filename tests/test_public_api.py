"""This site uses the library as any site would: only the names that live_tasks/__init__.py
exports or that docs/api.md documents in the public modules its docstring lists."""

from __future__ import annotations

import ast
import re

import live_tasks
from tests.processes import ROOT

SITE = ["project", "exports", "imports", "posts", "accounts", "notifications"]


def public_modules() -> set[str]:
    return set(re.findall(r"`(live_tasks\.\w+)", live_tasks.__doc__ or ""))


def documented(name: str) -> bool:
    api = (ROOT / "docs" / "api.md").read_text()
    return re.search(rf"`(live_tasks\.[\w.]+\.)?{re.escape(name)}\b", api) is not None


def site_imports() -> list[tuple[str, str, str]]:
    """(file:line, module, name) of every import from live_tasks in the site's code."""
    found = []
    for folder in SITE:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
                if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "live_tasks":
                    found += [(where, node.module or "", alias.name) for alias in node.names]
                elif isinstance(node, ast.Import):
                    found += [(where, a.name, "") for a in node.names if a.name.split(".")[0] == "live_tasks"]
    return found


def test_the_site_imports_only_the_documented_public_names_of_the_library():
    imports = site_imports()
    assert len(imports) > 20, "the site's imports were found"
    modules = public_modules()
    assert {"live_tasks.views", "live_tasks.urls", "live_tasks.asgi"} <= modules
    private = [
        f"{where}: {module}.{name}" if name else f"{where}: import {module}"
        for where, module, name in imports
        if not (
            (module == "live_tasks" and (name in live_tasks.__all__ or not name))
            or (module in modules and (not name or documented(name)))
        )
    ]
    assert private == []


def test_every_top_level_name_is_documented():
    assert [name for name in live_tasks.__all__ if name != "__version__" and not documented(name)] == []
