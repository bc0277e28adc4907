"""tools/compare_results.py: which files of two results trees differ, and whether their values do."""

import json

import numpy as np

import compare_results


def write(root, files):
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if rel.endswith(".npy"):
            np.save(path, content)
        else:
            path.write_text(content)


def test_identical_trees_pass_and_every_kind_of_difference_is_named(tmp_path, capsys):
    same = {"a/maps.npy": np.arange(4, dtype=np.float16), "a/table.csv": "x,seconds\n1,2\n"}
    write(tmp_path / "before", same)
    write(tmp_path / "after", same)
    assert compare_results.main([str(tmp_path / "before"), str(tmp_path / "after")]) == 0
    assert capsys.readouterr().out.strip().endswith("2 files on both sides, 0 differing or one-sided")

    write(tmp_path / "before", {"old.csv": "x\n1\n", "m.json": json.dumps({"auroc": 0.9, "train_seconds": 1.0}),
                                "b/bytes.npy": np.zeros(3, np.float32), "t.csv": "x,seconds\n1,2\n"})
    write(tmp_path / "after", {"new.csv": "x\n1\n", "m.json": json.dumps({"auroc": 0.9, "train_seconds": 2.5}),
                               "b/bytes.npy": np.ones(3, np.float32), "t.csv": "x,seconds\n1,3\n"})
    assert compare_results.main([str(tmp_path / "before"), str(tmp_path / "after")]) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines == [
        "differs:     b/bytes.npy (values differ)",
        "differs:     m.json (values equal apart from timings)",
        "only after:  new.csv",
        "only before: old.csv",
        "differs:     t.csv (values equal apart from timings)",
        "5 files on both sides, 5 differing or one-sided",
    ]
    assert compare_results.main([str(tmp_path / "before"), str(tmp_path / "after"), "--ignore", "*.csv",
                                 "--ignore", "b/*", "--ignore", "m.json"]) == 0
