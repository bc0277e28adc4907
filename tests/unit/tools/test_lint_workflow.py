"""tools/lint_workflow.py: only {PYTHON} and {SCRIPTS} in shell lines are allowed lints."""

import lint_workflow

TEXT = """Using workflow specific profile profiles/default for setting default command line arguments.
Lints for rule convert (line 21, /x/workflow/rules/data.smk):
    * Shell command directly uses variable PYTHON from outside of the rule:
      It is recommended to pass all files as input and output, and non-file
      parameters via the params directive.
    * Shell command directly uses variable SCRIPTS from outside of the rule:
      It is recommended ...
    * Shell command directly uses variable DATA_ROOT from outside of the rule:
      It is recommended ...

Lints for rule split (line 53, /x/workflow/rules/data.smk):
    * No log directive defined:
      Without a log directive, all output will be printed to the terminal.
"""


def test_parse_finds_every_lint_with_its_rule():
    assert lint_workflow.parse(TEXT) == [
        ("rule convert", "Shell command directly uses variable PYTHON from outside of the rule"),
        ("rule convert", "Shell command directly uses variable SCRIPTS from outside of the rule"),
        ("rule convert", "Shell command directly uses variable DATA_ROOT from outside of the rule"),
        ("rule split", "No log directive defined"),
    ]


def test_only_the_interpreter_and_scripts_folder_are_allowed():
    verdicts = [lint_workflow.allowed(title) for _, title in lint_workflow.parse(TEXT)]
    assert verdicts == [True, True, False, False]
