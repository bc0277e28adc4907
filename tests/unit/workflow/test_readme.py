"""The README documents every config key of the schema, with the schema's default."""

import yaml

from helpers.repo import REPO


def schema_keys(node, prefix=""):
    for key, spec in node.get("properties", {}).items():
        path = f"{prefix}{key}"
        yield path, spec
        yield from schema_keys(spec, f"{path}.")
    extra = node.get("additionalProperties")
    if isinstance(extra, dict) and extra.get("type") == "object":
        yield from schema_keys(extra, f"{prefix}<name>.")


def test_every_config_key_is_in_the_readme_table_with_its_default():
    schema = yaml.safe_load((REPO / "src" / "salaudit" / "config.schema.yaml").read_text())
    readme = (REPO / "README.md").read_text()
    rows = {line.split("|")[1].strip().strip("`"): line.split("|")[2].strip()
            for line in readme.splitlines() if line.startswith("| `")}
    for path, spec in schema_keys(schema):
        extra = spec.get("additionalProperties")
        if "properties" in spec or (isinstance(extra, dict) and extra.get("type") == "object"):
            continue  # a section: its keys are listed one by one
        name = f"{path}.<arch>" if path in ("classifiers.pretrained", "classifiers.weights") else path
        assert name in rows, f"README lacks config key {name}"
        if "default" in spec and not isinstance(spec["default"], dict):
            default = spec["default"]
            shown = rows[name].strip("`")
            expected = yaml.safe_dump(default, default_flow_style=True).strip().removesuffix("...").strip()
            assert shown in (str(default), expected, str(default).lower()), f"{name}: README {shown}, schema {default}"
    assert "\nmake demo " in readme and "\nmake test " in readme  # the two quickstart commands
