"""The README's configuration table and the settings class describe the same variables."""
from __future__ import annotations

import re

from service.settings import Settings

from .conftest import ROOT


def test_readme_configuration_table_matches_settings():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = re.findall(r"^\| `([A-Z0-9_]+)` \|", section, flags=re.M)
    assert len(documented) == len(set(documented)), "a variable is listed twice"
    assert set(documented) == {name.upper() for name in Settings.model_fields}
