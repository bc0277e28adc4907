"""envs/*.yaml (for `--sdm conda` users) must pin what requirements.txt pins and install salaudit."""

import re

import yaml

from helpers.repo import REPO


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
        # the package itself, editable from the checkout (conda runs pip in envs/, so '..' is the root)
        assert pip.count("-e ..") == 1, f"{path.name}: salaudit is not installed with '-e ..'"
        assert {"pyyaml", "jsonschema"} <= {e.partition("==")[0].lower() for e in pip}, \
            f"{path.name}: salaudit.config needs pyyaml and jsonschema"
        for entry in (e for e in pip if e != "-e .."):
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


# --------------------------------------------------------------------------- every import a rule needs

import importlib.metadata  # noqa: E402

from salaudit import codehash  # noqa: E402


def third_party_imports(script):
    """Every third-party top-level module a script needs, following its salaudit imports
    transitively (`salaudit.codehash.scan`, which also versions each rule's code)."""
    return set(codehash.scan(script)[1])


def rules_scripts_envs():
    """(rule, script, env file) of every rule that runs a script."""
    found = []
    for smk in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        blocks = re.split(r"^\s*rule ?(\w*):", smk.read_text(), flags=re.M)
        for name, body in zip(blocks[1::2], blocks[2::2]):
            script = re.search(r'code_version\("([\w.]+)"\)', body)
            env = re.search(r'conda:\s*\n\s*"([^"]+)"', body)
            if script and env:
                found.append((name or "randomized_saliency_<arch>", REPO / "scripts" / script.group(1),
                              (smk.parent / env.group(1)).resolve()))
    return found


def distributions_of(env_file):
    spec = yaml.safe_load(env_file.read_text())
    pip = next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict))
    return {entry.partition("==")[0].lower().replace("_", "-") for entry in pip if entry != "-e .."}


def test_every_import_of_every_rule_is_in_its_env():
    """A rule's script and every salaudit module it imports (transitively, lazy imports
    included) import only what the rule's conda env installs: `--sdm conda` cannot fail at import."""
    providers = importlib.metadata.packages_distributions()  # import name -> distributions
    checked = rules_scripts_envs()
    assert len(checked) >= 14, checked
    missing = []
    for rule, script, env in checked:
        provided = distributions_of(env)
        for module in sorted(third_party_imports(script)):
            dists = {d.lower().replace("_", "-") for d in providers.get(module, [])}
            assert dists, f"{rule}: {module} is imported but installed by no distribution here"
            if not dists & provided:
                missing.append(f"{rule} ({script.name}, {env.name}): {module} from {sorted(dists)}")
    assert not missing, "imports the rule's env does not install:\n" + "\n".join(missing)


def test_the_import_scan_follows_the_package_and_lazy_imports():
    """The scan is not vacuous: a training script needs torch through salaudit.models, and the
    scoring script needs sklearn, which salaudit.evaluation.metrics imports inside a function."""
    assert {"torch", "torchvision", "numpy", "pandas", "yaml", "jsonschema"} <= third_party_imports(
        REPO / "scripts" / "train_classifier.py")
    assert "pydicom" in third_party_imports(REPO / "scripts" / "convert.py")
    assert {"sklearn", "skimage", "scipy", "pandas"} <= third_party_imports(REPO / "scripts" / "score.py")
    assert "torch" not in third_party_imports(REPO / "scripts" / "aggregate.py")
