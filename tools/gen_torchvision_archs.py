"""Write src/salaudit/torchvision_archs.json: the registry entry of every torchvision
classification model, derived from its structure (`salaudit.models.structure.derive`), or the
reason it cannot be audited. The workflow reads the JSON at parse time without importing torch.

    python tools/gen_torchvision_archs.py            # rewrite the table
    python tools/gen_torchvision_archs.py --check    # exit 1 when the table is not what torchvision gives

Models are built on the meta device (no memory, nothing downloaded); about a minute for all.
The paper's two architectures keep their hand-written entries in `salaudit.registry`.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import torch
import torchvision
from torchvision import models

from salaudit.models.architectures import torchvision_model
from salaudit.models.structure import NotDerivable, derive
from salaudit.registry import PAPER_ARCHS, TORCHVISION_TABLE


def table(names: list[str] | None = None) -> dict:
    archs, refused = {}, {}
    for name in names or models.list_models(module=models):
        if name in PAPER_ARCHS:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                with torch.device("meta"):
                    model = torchvision_model(name, 2)
            except NotImplementedError:  # RegNets compute their widths with tensors: built on the CPU
                model = torchvision_model(name, 2).to("meta")
        try:
            archs[name] = derive(model)
        except NotDerivable as err:
            refused[name] = str(err)
    return {"torchvision": torchvision.__version__.split("+")[0], "archs": archs, "refused": refused}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the file instead of writing it")
    args = parser.parse_args(argv)
    text = json.dumps(table(), indent=1, sort_keys=True) + "\n"
    if args.check:
        if TORCHVISION_TABLE.read_text() != text:
            print(f"{TORCHVISION_TABLE} is stale: run python tools/gen_torchvision_archs.py", file=sys.stderr)
            return 1
        print(f"{TORCHVISION_TABLE}: up to date")
        return 0
    TORCHVISION_TABLE.write_text(text)
    found = json.loads(text)
    print(f"{TORCHVISION_TABLE}: {len(found['archs'])} architectures, {len(found['refused'])} refused")
    return 0


if __name__ == "__main__":
    sys.exit(main())
