"""`snakemake --lint`, with the one lint this workflow answers by design allowed (`make lint`).

Snakemake recommends passing every value a shell command uses as a param, for provenance. The
interpreter and the scripts folder (``{PYTHON}``, ``{SCRIPTS}`` in every shell line,
`workflow/rules/common.smk`) are deliberately not params: they are paths of the checkout and
the environment, and Snakemake's params trigger would rerun every job of a finished run driven
from another clone or mount (issue 17). What a job computes is tracked instead by each rule's
``code`` param (`salaudit.codehash`). Every other lint fails.

    python tools/lint_workflow.py [snakemake arguments...]

Prints every lint; exits 1 when one is not allowed (or Snakemake fails), 0 otherwise.
"""

from __future__ import annotations

import re
import subprocess
import sys

ALLOWED_VARIABLES = ("PYTHON", "SCRIPTS")
_RULE = re.compile(r"^Lints for (rule \S+|snakefile \S+)")
_LINT = re.compile(r"^\s+\* (.+?):?$")
_OUTSIDE = re.compile(r"Shell command directly uses variable (\w+) from outside of the rule")


def parse(text: str) -> list[tuple[str, str]]:
    """``(where, title)`` of every lint in `snakemake --lint`'s text output."""
    found, where = [], None
    for line in text.splitlines():
        rule = _RULE.match(line)
        if rule:
            where = rule.group(1)
            continue
        lint = _LINT.match(line)
        if lint and where:
            found.append((where, lint.group(1)))
    return found


def allowed(title: str) -> bool:
    outside = _OUTSIDE.fullmatch(title)
    return bool(outside) and outside.group(1) in ALLOWED_VARIABLES


def main(argv: list[str]) -> int:
    result = subprocess.run([sys.executable, "-m", "snakemake", "--lint", *argv], capture_output=True, text=True)
    text = result.stdout + result.stderr
    lints = parse(text)
    refused = [(where, title) for where, title in lints if not allowed(title)]
    for where, title in refused:
        print(f"LINT {where}: {title}")
    if result.returncode not in (0, 1) or (result.returncode == 1 and not lints):
        print(text[-3000:])
        print(f"snakemake --lint failed (exit {result.returncode})")
        return 1
    print(f"snakemake --lint: {len(lints)} lint(s), {len(lints) - len(refused)} allowed "
          f"({', '.join('{' + v + '}' for v in ALLOWED_VARIABLES)} in shell lines: not params, by design), "
          f"{len(refused)} refused")
    return 1 if refused else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
