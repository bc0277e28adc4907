"""The configuration: its schema (``config.schema.yaml``, beside this module) owns every default.

The workflow validates the user's config against the schema (Snakefile, defaults filled in);
each rule then hands its script the part of the validated config it reads, in one piece:
``--settings JSON`` (`settings_argument`). A script, a test or a notebook calling the library
without a config gets the schema's defaults (`resolve`), so a new setting is added in the
schema and read where it is used, nowhere else (tests/unit/test_config.py checks that no
default is written twice). Torch-free: the workflow imports it at parse time.
"""

from __future__ import annotations

import argparse
import copy
import json
from functools import lru_cache
from importlib.resources import files

import yaml

SCHEMA_PATH = str(files("salaudit") / "config.schema.yaml")


class ConfigError(ValueError):
    """A config value the schema does not allow (one line: where and why)."""


@lru_cache(maxsize=1)
def _schema() -> dict:
    with open(SCHEMA_PATH) as handle:
        return yaml.safe_load(handle)


def schema() -> dict:
    """The schema as a dict (a copy: callers may change it)."""
    return copy.deepcopy(_schema())


def _validator(schema_: dict):
    """A Draft 2020-12 validator that fills in the schema's defaults as it validates (what
    Snakemake's ``validate(..., set_default=True)`` does)."""
    from jsonschema import Draft202012Validator, validators

    def set_defaults(validator, properties, instance, subschema):
        if isinstance(instance, dict):
            for name, prop in properties.items():
                if "default" in prop and name not in instance:
                    instance[name] = copy.deepcopy(prop["default"])
        yield from Draft202012Validator.VALIDATORS["properties"](validator, properties, instance, subschema)

    filling = validators.extend(Draft202012Validator, {"properties": set_defaults})
    return filling(schema_)


def describe(error) -> str:
    """One line for a schema violation: the dotted key, what is wrong, what is allowed."""
    path = [str(p) for p in error.absolute_path]
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        key = ".".join([*path, extra[0]]) if extra else ".".join(path)
        return f"{key}: unknown key; allowed here: {', '.join(allowed) or 'none'}"
    if error.validator == "required":
        return f"{'.'.join(path) or 'config'}: {error.message}"
    return f"{'.'.join(path) or 'config'}: {error.message}"


def resolve(given: dict | None = None, complete: bool = False) -> dict:
    """``given`` (any part of a config: e.g. ``{"seed": 1, "classifiers": {"epochs": 2}}``) with
    every other key at the schema's default, validated. ``datasets`` is optional unless
    ``complete`` (a whole config, as the workflow reads it; scripts are handed the part they
    read). Raises `ConfigError`: one line naming the key (`describe`)."""
    from jsonschema.exceptions import best_match

    config = copy.deepcopy(given or {})
    schema_ = schema()
    if not complete:
        schema_.pop("required", None)
    error = best_match(_validator(schema_).iter_errors(config))
    if error is not None:
        raise ConfigError(describe(error))
    return config


@lru_cache(maxsize=1)
def _defaults() -> str:
    return json.dumps(resolve({}))


def defaults() -> dict:
    """Every setting at the schema's default (no datasets)."""
    return json.loads(_defaults())


def settings_argument(parser: argparse.ArgumentParser) -> None:
    """``--settings JSON``: the part of the validated config a rule's script reads, in one piece.
    ``args.settings`` is the resolved config (absent keys: the schema's defaults); a value the
    schema refuses is a usage error naming the key."""
    parser.add_argument("--settings", type=_resolved, default="{}", metavar="JSON",
                        help="the config keys this script reads, as JSON (e.g. '{\"seed\": 1}'); "
                             "absent keys take the schema's defaults")


def _resolved(text: str) -> dict:
    try:
        given = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not JSON ({error})")
    if not isinstance(given, dict):
        raise argparse.ArgumentTypeError("expected a JSON object")
    try:
        resolved = resolve(given)
    except ConfigError as error:
        raise argparse.ArgumentTypeError(str(error))
    if "saliency" in given:  # the randomization steps of each architecture, as the workflow has them
        from salaudit import registry

        try:
            registry.override_cascades(resolved["saliency"]["randomization"]["blocks"])
        except registry.ModelError as error:
            raise argparse.ArgumentTypeError(str(error))
    return resolved


def demo_block(text: str) -> dict:
    """A dataset's ``demo`` block given as JSON (argparse type), with the schema's defaults."""
    try:
        given = json.loads(text)
        return resolve({"datasets": {"demo": {"format": "siim", "demo": given}}})["datasets"]["demo"]["demo"]
    except (json.JSONDecodeError, ConfigError) as error:
        raise argparse.ArgumentTypeError(str(error).replace("datasets.demo.", ""))
