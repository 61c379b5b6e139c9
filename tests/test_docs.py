"""The reference pages stay true to the code: every LIVE_TASKS key in docs/settings.md with its
default, every system check id, exported name, URL name and template tag in docs/api.md, and the
README's install steps in docs/install.md. (`make docs` builds the site and checks its links.)"""

from __future__ import annotations

import ast
import re

import live_tasks
from live_tasks import checks, urls
from live_tasks.conf import DEFAULTS
from live_tasks.templatetags.live_tasks import register as template_library
from tests.processes import ROOT

DOCS = ROOT / "docs"


def table_rows(markdown: str, heading: str) -> list[list[str]]:
    """The body rows of the first table under `## heading`, as lists of cells."""
    section = markdown.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row.strip("|").split(" | ")] for row in rows[2:]]


def code(cell: str) -> str:
    """The first `code span` of a cell."""
    found = re.search(r"`([^`]+)`", cell)
    assert found, f"no code span in {cell!r}"
    return found.group(1)


def test_settings_md_documents_every_key_with_its_default_and_no_other():
    rows = table_rows((DOCS / "settings.md").read_text(), "Keys")
    documented = [code(key) for key, _, _ in rows]
    assert len(documented) == len(set(documented)), "a key documented twice"
    assert set(documented) - set(DEFAULTS) == set(), "documented, but not a key of live_tasks.conf.DEFAULTS"
    assert set(DEFAULTS) - set(documented) == set(), "a key of live_tasks.conf.DEFAULTS missing from docs/settings.md"
    for key, default, meaning in rows:
        assert ast.literal_eval(code(default)) == DEFAULTS[code(key)], f"the default of {key}"
        assert meaning, f"the meaning of {key}"


def test_settings_md_gives_this_sites_environment_variable_for_each_key():
    source = (ROOT / "project" / "settings.py").read_text()
    site = source.split("\nLIVE_TASKS: dict[str, Any] = {\n", 1)[1].split("\n}\n", 1)[0]
    # "KEY": env.int("VARIABLE", default=...), and WORK_DIR through _work_dir = env.str("VARIABLE", ...)
    read_from = dict(re.findall(r'^\s+"(\w+)": env\.\w+\("(\w+)"', site, re.M))
    read_from["WORK_DIR"] = re.findall(r'^_work_dir = env\.str\("(\w+)"', source, re.M)[0]
    rows = table_rows((DOCS / "settings.md").read_text(), "This site's values")
    assert [code(key) for key, _, _ in rows] == list(DEFAULTS), "every key once, in live_tasks/conf.py's order"
    for key, _, variable in rows:
        expected = read_from.get(code(key)) or "none"
        assert variable.strip("`") == expected, f"{key}: project/settings.py reads {expected}"


def test_api_md_documents_every_system_check_id_and_no_other():
    # Every id a check in live_tasks/checks.py reports (`checks.Error(..., id=NAME)`), and the
    # django.tasks backend's check (live_tasks/backends.py, with its id named in checks.py).
    source = "".join((ROOT / "live_tasks" / name).read_text() for name in ("checks.py", "backends.py"))
    ids = {getattr(checks, name) for name in re.findall(r"\bid=([A-Z_0-9]+)", source)}
    assert all(re.fullmatch(r"live_tasks\.[EW]\d{3}", check_id) for check_id in ids) and len(ids) >= 8
    documented = [code(row[0]) for row in table_rows((DOCS / "api.md").read_text(), "System checks")]
    assert len(documented) == len(set(documented)), "a check documented twice"
    assert set(documented) - ids == set(), "documented, but no check in live_tasks/checks.py has this id"
    assert ids - set(documented) == set(), "a check id of live_tasks/checks.py missing from docs/api.md"


def test_api_md_names_every_export_url_name_and_template_tag():
    api = (DOCS / "api.md").read_text()
    for name in live_tasks.__all__:
        assert f"`{name}`" in api or f"`{name}(" in api, f"live_tasks.{name}"
    for pattern in urls.urlpatterns:
        assert f"`live_tasks:{pattern.name}`" in api, f"the URL name live_tasks:{pattern.name}"
    for tag in template_library.tags:
        assert f"{{% {tag}" in api, f"the template tag {tag}"
    for name in template_library.filters:
        assert f"|{name} }}}}" in api, f"the template filter {name}"


def test_docs_install_md_has_the_readmes_install_steps_word_for_word():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Install in your project\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n.*?```", section, re.S)
    assert len(blocks) == 3, "settings.py, urls.py, asgi.py"
    install = (DOCS / "install.md").read_text()
    for block in blocks:
        assert block in install, f"docs/install.md differs from the README: {block.splitlines()[1]}"
