"""Run in nnU-Net's environment: nnU-Net v2's dataset integrity check on a raw dataset folder, then each label
file read with nnU-Net's reader and split into its regions by nnU-Net's LabelManager, saved as .npy (in
nnU-Net's array order) for the test to compare. Prints one JSON line."""

import json
import sys
from pathlib import Path

import numpy as np
from nnunetv2.experiment_planning.verify_dataset_integrity import verify_dataset_integrity
from nnunetv2.imageio.reader_writer_registry import determine_reader_writer_from_dataset_json
from nnunetv2.utilities.label_handling.label_handling import LabelManager


def main() -> None:
    folder = Path(sys.argv[1])
    verify_dataset_integrity(str(folder), 1)
    dataset = json.loads((folder / "dataset.json").read_text())
    manager = LabelManager(dataset["labels"], regions_class_order=dataset.get("regions_class_order"))
    regions = manager.all_regions or [int(c) for c in manager.all_labels if c]
    cases = {}
    for label in sorted((folder / "labelsTr").glob("*.nii.gz")):
        case = label.name[: -len(".nii.gz")]
        reader = determine_reader_writer_from_dataset_json(dataset, str(label))()
        seg, properties = reader.read_seg(str(label))
        masks = []
        for n, region in enumerate(regions):
            path = folder.parent / f"{case}-region{n}.npy"
            np.save(path, np.isin(seg[0], region if isinstance(region, (list, tuple)) else [region]))
            masks.append(str(path))
        cases[case] = {"regions": [list(r) if isinstance(r, (list, tuple)) else [r] for r in regions], "masks": masks,
                       "spacing": [float(s) for s in properties["spacing"]]}
    print(json.dumps({"ok": True, "has_regions": manager.has_regions, "cases": cases}))


if __name__ == "__main__":  # nnU-Net checks on spawned processes, which import this file again
    main()
