"""salaudit.config: the schema owns every default, the scripts get their settings in one piece."""

import argparse
import ast
import json
import re

import pytest
import yaml

from salaudit import config

# Literal defaults a function may keep although its parameter shares a schema key's name, each
# with the reason it is not the config's value written again: (file, function, parameter).
NOT_CONFIG_DEFAULTS: set[tuple[str, str, str]] = set()


def schema_keys_with_defaults(node=None, found=None):
    """Every property name of the schema that carries a default, at any depth."""
    node = config.schema() if node is None else node
    found = set() if found is None else found
    for name, prop in (node.get("properties") or {}).items():
        if "default" in prop:
            found.add(name)
        schema_keys_with_defaults(prop, found)
    for sub in ("additionalProperties", "items"):
        if isinstance(node.get(sub), dict):
            schema_keys_with_defaults(node[sub], found)
    return found


def written_defaults(path, rel, keys):
    """Places in one Python file where a schema key's default is written again: a literal default
    of a parameter or dataclass field named like the key, an argparse option named like it, or
    ``.get("<key>", <literal>)``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            a = node.args
            positional = a.posonlyargs + a.args
            pairs = [*zip(positional[len(positional) - len(a.defaults):], a.defaults), *zip(a.kwonlyargs, a.kw_defaults)]
            for arg, default in pairs:
                if (arg.arg in keys and isinstance(default, ast.Constant) and default.value is not None
                        and (rel, node.name, arg.arg) not in NOT_CONFIG_DEFAULTS):
                    found.append(f"{rel}:{node.lineno} {node.name}({arg.arg}={default.value!r})")
        elif isinstance(node, ast.ClassDef):
            for statement in node.body:
                if (isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)
                        and statement.target.id in keys and statement.value is not None
                        and not (isinstance(statement.value, ast.Constant) and statement.value.value is None)):
                    found.append(f"{rel}:{statement.lineno} {node.name}.{statement.target.id}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            constants = [c.value for c in node.args if isinstance(c, ast.Constant) and isinstance(c.value, str)]
            if node.func.attr == "add_argument":
                found += [f"{rel}:{node.lineno} option {c}" for c in constants
                          if c.startswith("--") and c[2:].replace("-", "_") in keys]
            if (node.func.attr == "get" and len(node.args) == 2 and constants and constants[0] in keys
                    and isinstance(node.args[1], ast.Constant) and node.args[1].value is not None):
                found.append(f"{rel}:{node.lineno} .get({constants[0]!r}, {node.args[1].value!r})")
    return found


def test_no_default_is_written_twice(repo):
    """A config key's default lives in the schema only: not in a signature, a dataclass, an
    argparse option (scripts get the config through --settings) or a ``.get`` fallback."""
    keys = schema_keys_with_defaults()
    assert {"seed", "batch_size", "samples", "patience", "n_bootstrap", "positive_fraction"} <= keys
    files = sorted([*(repo / "src" / "salaudit").rglob("*.py"), *(repo / "scripts").glob("*.py"),
                    *(repo / "workflow").rglob("*.smk"), repo / "Snakefile"])
    found = []
    for path in files:
        rel = path.relative_to(repo).as_posix()
        if path.suffix == ".py":
            found += written_defaults(path, rel, keys)
        else:  # Snakemake files: a config value read with a fallback
            found += [f"{rel}: .get({m.group(1)!r}, ...)" for m in re.finditer(r"\.get\(\s*[\"'](\w+)[\"']\s*,\s*(?!None)[^)\s]", path.read_text())
                      if m.group(1) in keys]
    assert found == [], "defaults written outside the schema:\n" + "\n".join(found)


def test_the_scan_finds_what_it_looks_for(tmp_path):
    """The scan above is not vacuous: each kind of duplicated default is found."""
    code = tmp_path / "dup.py"
    code.write_text(
        "from dataclasses import dataclass\n"
        "def f(x, batch_size=16, *, seed=0, device=None):\n    pass\n"
        "@dataclass\nclass S:\n    patience: int = 3\n    lr: float | None = None\n"
        "parser.add_argument('--n-bootstrap', type=int)\n"
        "settings.get('samples', 25)\n"
    )
    found = written_defaults(code, "dup.py", schema_keys_with_defaults())
    assert [line.split(" ", 1)[1] for line in found] == [
        "f(batch_size=16)", "f(seed=0)", "S.patience", "option --n-bootstrap", ".get('samples', 25)"]


def test_resolve_fills_every_default_and_keeps_what_is_given():
    resolved = config.resolve({"seed": 3, "saliency": {"sg": {"samples": 2}}})
    assert resolved["seed"] == 3
    assert resolved["saliency"]["sg"]["samples"] == 2
    schema = yaml.safe_load(open(config.SCHEMA_PATH))
    sg = schema["properties"]["saliency"]["properties"]["sg"]["properties"]
    assert resolved["saliency"]["sg"]["noise"] == sg["noise"]["default"]
    assert resolved["image_size"] == schema["properties"]["image_size"]["default"]
    assert config.defaults()["saliency"]["sg"]["samples"] == sg["samples"]["default"] == 25


def test_resolve_names_the_key_it_refuses():
    with pytest.raises(config.ConfigError, match=r"^saliency\.sg\.samples: 0 is less than the minimum"):
        config.resolve({"saliency": {"sg": {"samples": 0}}})
    with pytest.raises(config.ConfigError, match=r"^sed: unknown key; allowed here: classifiers, .*, seed, "):
        config.resolve({"sed": 1})
    with pytest.raises(config.ConfigError, match=r"^saliency\.sg\.sample: unknown key; allowed here: noise, nt_type, samples$"):
        config.resolve({"saliency": {"sg": {"sample": 3}}})
    with pytest.raises(config.ConfigError, match=r"^saliency\.max_batch: '64' is not of type 'integer'$"):
        config.resolve({"saliency": {"max_batch": "64"}})
    with pytest.raises(config.ConfigError, match=r"^config: 'datasets' is a required property$"):
        config.resolve({}, complete=True)


def test_settings_argument_is_the_resolved_config_or_a_usage_error(capsys):
    parser = argparse.ArgumentParser(prog="script")
    config.settings_argument(parser)
    assert parser.parse_args([]).settings == config.defaults()
    given = parser.parse_args(["--settings", json.dumps({"folds": 3})]).settings
    assert given["folds"] == 3 and given["seed"] == config.defaults()["seed"]
    for bad, message in [("{", "not JSON"), ("[1]", "expected a JSON object"), ('{"folds": 1}', "folds: 1 is less than")]:
        with pytest.raises(SystemExit):
            parser.parse_args(["--settings", bad])
        assert message in capsys.readouterr().err
