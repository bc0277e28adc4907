"""Datasets of format table through the real workflow: the jobs a dry run plans (the localizer
from the table's columns, the split column as a split file), the parse-time checks, and the
convert and split jobs run for real on tiny tables (a few seconds)."""

import pandas as pd
import pytest

from cost_model import parse_dry_run
from helpers.table_like import write_table_like
from test_workflow import TINY, snakemake

pytestmark = pytest.mark.e2e


def table_config(tmp_path, **datasets):
    small = {key: value for key, value in TINY.items() if key != "datasets"}
    return {**small, "folds": 2, "datasets": datasets}


@pytest.fixture
def roots(tmp_path):
    write_table_like(tmp_path / "boxes", "boxes", split=True)
    write_table_like(tmp_path / "masks", "mask", "png16")
    return tmp_path


def test_a_dry_run_plans_a_table_dataset_like_the_others(roots):
    config = table_config(roots, boxes={"format": "table", "root": str(roots / "boxes")},
                          masks={"format": "table", "root": str(roots / "masks"), "table": "table.csv"},
                          demo={"format": "table", "demo": {"n_images": 8}})
    result = snakemake(roots, "-n", config=config)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = parse_dry_run(result.stdout)
    localizers = sorted({(j.wildcards["dataset"], j.wildcards["localizer"]) for j in jobs if j.rule == "train_localizer"})
    assert localizers == [("boxes", "retinanet"), ("demo", "unet"), ("masks", "unet")]
    assert sorted(j.wildcards.get("dataset") for j in jobs if j.rule in ("convert", "split")) == \
        ["boxes", "boxes", "demo", "demo", "masks", "masks"]
    assert [j.rule for j in jobs].count("demo_data") == 1
    shown = snakemake(roots, "-n", "-p", "results/boxes/splits.csv", config=config).stdout
    assert "--format table" in shown and "--table table.csv" in shown
    assert f"--split-table {roots / 'boxes' / 'table.csv'}" in shown


@pytest.mark.parametrize("spec, line", [
    ({"format": "table", "root": "{root}", "table": "absent.csv"}, "datasets.mine: missing {root}/absent.csv"),
    ({"format": "table", "root": "{root}", "classes": ["positive"]}, "datasets.mine.classes: format table has no classes"),
    ({"format": "siim", "root": "{root}", "table": "table.csv"}, "datasets.mine.table: only format table reads a table"),
    ({"format": "table", "root": "{root}", "splits": "{root}/table.csv"},
     "datasets.mine.splits: the table has a split column too; give one of them"),
    ({"format": "table", "demo": {}, "table": "mine.csv"}, "datasets.mine.table: a demo writes table.csv, not mine.csv"),
    ({"format": "table", "demo": {}, "classes": ["positive"]}, "datasets.mine.classes: format table has no classes"),
])
def test_parse_time_checks_are_one_line(roots, spec, line):
    root = roots / "boxes"
    spec = {key: value.format(root=root) if isinstance(value, str) else value for key, value in spec.items()}
    result = snakemake(roots, "-n", config=table_config(roots, mine=spec))
    assert result.returncode != 0
    assert line.format(root=root) in result.stderr, result.stderr[-2000:]


def test_a_bad_header_stops_the_run_naming_the_column(roots):
    (roots / "boxes" / "table.csv").write_text("image,label,x,y,width,comment\n")
    result = snakemake(roots, "-n", config=table_config(roots, mine={"format": "table", "root": str(roots / "boxes")}))
    assert result.returncode != 0
    assert "datasets.mine.table: " in result.stderr and "unknown columns ['comment']" in result.stderr


def test_convert_and_split_run_for_real(roots):
    config = table_config(roots, boxes={"format": "table", "root": str(roots / "boxes")},
                          masks={"format": "table", "root": str(roots / "masks")})
    result = snakemake(roots, "--cores", "2", "results/boxes/splits.csv", "results/masks/splits.csv", config=config)
    assert result.returncode == 0, result.stderr[-3000:]
    boxes = pd.read_csv(roots / "results" / "boxes" / "splits.csv").set_index("image_id")
    assert sorted(boxes.index[boxes.split == "test"]) == ["images/n2", "images/p4"]  # the table's split column
    masks = pd.read_csv(roots / "results" / "masks" / "data" / "manifest.csv")
    assert len(masks) == 8 and set(masks["bits_stored"]) == {16}
    again = snakemake(roots, "-n", "results/boxes/splits.csv", "results/masks/splits.csv", config=config)
    assert "Nothing to be done" in again.stdout + again.stderr  # the inventory is stable
