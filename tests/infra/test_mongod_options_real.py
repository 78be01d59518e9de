"""The generated option table against a real mongod (Vagrant tier, marked real_mongod).

dbrs refuses [mongod] keys that are not in installer/data/mongod-options-VERSION.json and accepts the
rest; that is only right if the real mongod of that version knows every key in the table. mongod's
hidden `--outputConfig` parses the config file (and refuses unknown keys) without starting a server.
"""

from __future__ import annotations

import json
import shlex

import pytest

pytestmark = pytest.mark.real_mongod

SAMPLE = {"bool": "true", "int": "1", "float": "1.0", "string": '"x"', "string_list": '["x"]', "any": '"x"'}


def _yaml(key, value):
    parts = key.split(".")
    return "".join("  " * i + p + ":\n" for i, p in enumerate(parts[:-1])) + "  " * (len(parts) - 1) + f"{parts[-1]}: {value}\n"


def _output_config(host, text):
    path = "/tmp/dbrs-option-check.conf"
    host.run(f"printf %s {shlex.quote(text)} > {path}")
    return host.run(f"/usr/bin/mongod --config {path} --outputConfig")


def test_every_option_in_the_table_is_known_to_the_real_mongod(host):
    from installer import mongod_options

    version = host.run("/usr/bin/mongod --version").stdout.split("v", 1)[1][:3]
    table = mongod_options.table(version)
    control = _output_config(host, _yaml("net.compresion.compressors", '"zstd"'))
    assert control.rc != 0 and "Unrecognized option" in control.stdout + control.stderr
    unknown = []
    for key, entry in table["options"].items():
        if entry["type"] == "map":
            continue
        r = _output_config(host, _yaml(key, SAMPLE[entry["type"]]))
        if "Unrecognized option" in r.stdout + r.stderr:
            unknown.append(key)
    assert unknown == [], json.dumps(unknown)
