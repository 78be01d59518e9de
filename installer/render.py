"""Render the host text kept in `templates/` (shipped as package data).

Python hands values to the templates and never builds config text itself.
jinja2 is imported here only, so commands that render nothing stay fast.
"""

import json
from functools import lru_cache
from importlib import resources


def template_dir():
    return resources.files("installer.templates")


@lru_cache(maxsize=1)
def _env():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["toml"] = toml_value
    env.filters["systemd_quote"] = systemd_quote
    return env


def toml_value(value):
    """A TOML literal for a string, number, bool or list (JSON's escapes are valid TOML)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(str(value))


def systemd_quote(value):
    """One argument quoted for an Exec= line (systemd.service(5) "Command lines")."""
    text = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
    return f'"{text}"'


def render(name, **values):
    """Render templates/NAME with VALUES; returns bytes ready for the file writer."""
    return _env().get_template(name).render(**values).encode()
