"""Print the README's configuration table from `Settings`, so the two never disagree.

    .venv/bin/python scripts/settings_table.py
"""

from __future__ import annotations

from control_plane.settings import REPO_ROOT, Settings


def settings_table() -> str:
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        default = field.default
        if isinstance(default, type(REPO_ROOT)):
            default = "./" + str(default.relative_to(REPO_ROOT)) if default.is_relative_to(REPO_ROOT) else default
        shown = f"`{default}`" if default not in ("", None) else "(empty)"
        rows.append(f"| `{name.upper()}` | {shown} | {field.description or ''} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(settings_table())
