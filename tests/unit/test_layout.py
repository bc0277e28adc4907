"""salaudit.layout: every results path is a template there, and nowhere else."""

import re

from salaudit import layout

# A results file written as a literal: "images.npy", f"{name}.csv", "results/..." in a rule.
RESULTS_FILE = re.compile(r"""["'][\w{}/.-]*\.(?:npy|npz|csv|pt|json|png)["']""")


def test_templates_fill_in_under_any_root():
    assert layout.path(layout.MASKS, "/tmp/run/results", dataset="siim").as_posix() == "/tmp/run/results/siim/data/masks.npy"
    assert layout.path(layout.TRAINED_MAP, dataset="rsna", arch="densenet121", fold=2, method="gcam",
                       stem=layout.TRAINED_STEM).as_posix() == "results/rsna/maps/densenet121/fold2/gcam/trained.npy"
    assert (layout.map_file("m", "sg", layout.randomized_stem("cascade", "01_fc"), layout.FLAGS_SUFFIX).as_posix()
            == "m/sg/cascade/01_fc.flags.npy")
    assert layout.file_name(layout.IMAGES) == "images.npy"
    assert layout.file_name(layout.SCORE, name="utility") == "utility.csv"
    assert layout.file_name(layout.FIGURE, name="examples_siim") == "examples_siim.png"


def test_no_results_path_is_written_outside_the_layout(repo):
    """Rules, scripts and the library name results files through `salaudit.layout` only (the
    Kaggle downloads' file names through `salaudit.datasets.formats`; the package's own data
    files beside its modules, such as torchvision_archs.json, are not results)."""
    found = []
    files = [*(repo / "workflow" / "rules").glob("*.smk"), repo / "Snakefile", *(repo / "scripts").glob("*.py"),
             *(p for p in (repo / "src" / "salaudit").rglob("*.py") if p.name not in ("layout.py", "formats.py"))]
    for path in files:
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            code = line.split("#")[0]
            if "Path(__file__).with_name(" in code:  # a data file of the package (not a result)
                continue
            if RESULTS_FILE.search(code) or re.search(r"""["']results/""", code):
                found.append(f"{path.relative_to(repo)}:{number}: {line.strip()}")
    assert found == [], "results paths written outside salaudit.layout:\n" + "\n".join(found)
