"""envs/*.yaml (for `--sdm conda` users) must pin what requirements.txt pins."""

import re

import yaml

from conftest import REPO


def requirement_pins():
    pins = {}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"requirements.txt: {line!r} is not pinned with =="
            pins[name.lower()] = version
    return pins


def env_files():
    files = sorted((REPO / "envs").glob("*.yaml"))
    assert {f.stem for f in files} >= {"data", "torch", "report"}
    return files


def test_every_env_pins_match_requirements():
    pins = requirement_pins()
    for path in env_files():
        spec = yaml.safe_load(path.read_text())
        assert "python=3.11" in spec["dependencies"], path
        pip = next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict))
        for entry in pip:
            name, _, version = entry.partition("==")
            assert name.lower() in pins, f"{path.name}: {name} is not in requirements.txt"
            assert version == pins[name.lower()], f"{path.name}: {name}=={version}, requirements.txt has {pins[name.lower()]}"


def test_every_rule_declares_an_existing_env():
    for smk in (REPO / "workflow" / "rules").glob("*.smk"):
        text = smk.read_text()
        # named rules, and rules defined in a loop (`rule:` + `name:`, e.g. randomized_saliency_<arch>)
        rules = re.findall(r"^\s*rule ?(\w*):", text, flags=re.M)
        envs = re.findall(r'conda:\s*\n\s*"([^"]+)"', text)
        assert len(envs) == len(rules), f"{smk.name}: {len(rules)} rules but {len(envs)} conda: directives"
        for env in envs:
            assert (smk.parent / env).resolve().is_file(), f"{smk.name}: {env} does not exist"
