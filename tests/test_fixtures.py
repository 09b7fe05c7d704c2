"""The committed demo project is exactly what fixtures/make_demo.py writes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "fixtures" / "demo"


def test_demo_matches_its_generator(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(ROOT / "fixtures" / "make_demo.py"), str(tmp_path / "demo")], check=True,
                   capture_output=True)
    fresh = sorted(p.relative_to(tmp_path / "demo") for p in (tmp_path / "demo").rglob("*") if p.is_file())
    committed = sorted(p.relative_to(DEMO) for p in DEMO.rglob("*") if p.is_file())
    assert fresh == committed
    for rel in fresh:
        a, b = tmp_path / "demo" / rel, DEMO / rel
        if rel.suffix == ".json":
            assert json.loads(a.read_text()) == json.loads(b.read_text()), rel
        else:  # gzip headers may differ between nibabel versions; the images must not
            ia, ib = nib.load(str(a)), nib.load(str(b))
            assert np.array_equal(np.asanyarray(ia.dataobj), np.asanyarray(ib.dataobj)), rel
            assert np.asanyarray(ia.dataobj).dtype == np.asanyarray(ib.dataobj).dtype
            assert np.allclose(ia.affine, ib.affine), rel
            assert [e.get_content() for e in ia.header.extensions] == [e.get_content() for e in ib.header.extensions]
