"""Store samples under MONAI's own dictionary transforms: image and ROI mask stay aligned pixel for pixel."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

monai = pytest.importorskip("monai")
from monai.transforms import Compose, RandAffined, RandFlipd, RandRotate90d  # noqa: E402

from topo.store_schema.datalist import export_datalist  # noqa: E402
from topo.trainer.data import StoreDataset, make_loader  # noqa: E402
from topo.trainer.samples import LoadStoreSampled  # noqa: E402

KEYS = ["image", "roi_mask", "probe"]


def _with_probe(sample):
    """The mask copied into an image-like channel: whatever MONAI does to the image channels it does to this."""
    return {**sample, "probe": sample["roi_mask"].clone()}


def _transforms():
    return {
        "flip": RandFlipd(KEYS, prob=1.0, spatial_axis=0),
        "rot90": RandRotate90d(KEYS, prob=1.0, max_k=3),
        "affine": RandAffined(
            KEYS, prob=1.0, rotate_range=0.5, translate_range=4, scale_range=0.2, mode="nearest", padding_mode="zeros"
        ),
        "compose": Compose(
            [
                RandFlipd(KEYS, prob=1.0, spatial_axis=1),
                RandRotate90d(KEYS, prob=1.0),
                RandAffined(KEYS, prob=1.0, rotate_range=0.3, mode="nearest", padding_mode="zeros"),
            ]
        ),
    }


def _samples(store, n=6):
    ds = StoreDataset(
        str(store), splits="test", batch_size=n, shuffle=False, drop_last=False, rank=0, world_size=1, collate=False
    )
    it = iter(ds)
    return [next(it) for _ in range(n)]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["flip", "rot90", "affine", "compose"])
def test_monai_spatial_transforms_keep_image_and_mask_aligned(small_store, name):
    t = _transforms()[name]
    t.set_random_state(seed=7)
    for sample in _samples(small_store):
        assert sample["roi_mask"].shape == (1, *sample["image"].shape[1:])
        mask = sample["roi_mask"]
        assert 0 < int(mask.sum()) < mask.numel()  # a real, non-trivial ROI: a misalignment would show
        out = t(_with_probe(sample))
        assert out["roi_mask"].shape == (1, *out["image"].shape[1:])
        # The mask moved exactly like an image channel (nearest interpolation on both).
        assert torch.equal(torch.as_tensor(out["roi_mask"]), torch.as_tensor(out["probe"]))
        if name in ("flip", "rot90"):  # lossless: the image pixels under the mask are the same multiset
            before = np.sort(sample["image"][:, mask[0] > 0].numpy().ravel())
            m = torch.as_tensor(out["roi_mask"])[0] > 0
            after = np.sort(torch.as_tensor(out["image"])[:, m].numpy().ravel())
            assert np.array_equal(before, after)


@pytest.mark.slow
def test_a_two_dimensional_mask_would_be_flipped_along_the_wrong_axis(small_store):
    """Why the mask is 1×H×W: MONAI reads axis 0 of an H×W mask as its channel and flips the wrong axis."""
    sample = _samples(small_store, 1)[0]
    mask2d = sample["roi_mask"][0]
    out = RandFlipd(["m"], prob=1.0, spatial_axis=0)({"m": mask2d})
    assert not torch.equal(torch.as_tensor(out["m"]), torch.flip(mask2d, dims=[0]))


@pytest.mark.slow
@pytest.mark.parametrize("collate", [False, True])
def test_len_counts_what_the_dataset_yields(small_store, collate):
    ds = StoreDataset(
        str(small_store),
        splits="val",
        batch_size=8,
        drop_last=False,
        rank=0,
        world_size=1,
        keys=("index",),
        collate=collate,
    )
    assert len(ds) == len(list(iter(ds)))
    assert ds.num_batches() == len(list(make_loader(ds)))


@pytest.mark.slow
def test_no_non_writable_array_warning(small_store):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = _samples(small_store, 2)[1]
        s["image"].add_(0), s["roi_mask"].add_(0)


@pytest.mark.slow
def test_export_datalist_items_load_in_a_monai_dataset(small_store, tmp_path):
    from monai.data import DataLoader, Dataset

    export_datalist(small_store, tmp_path / "datalist.json", splits=["val"])
    items = json.loads((tmp_path / "datalist.json").read_text())["validation"]
    flip = RandFlipd(["image", "roi_mask"], prob=1.0, spatial_axis=1)
    ds = Dataset(items[:8], transform=Compose([LoadStoreSampled(), flip]))
    direct = StoreDataset(
        str(small_store), splits="val", batch_size=8, shuffle=False, drop_last=False, rank=0, world_size=1
    )
    expected = {int(s["index"]): s for s in direct}
    batch = next(iter(DataLoader(ds, batch_size=4)))
    assert batch["image"].shape[0] == 4 and batch["roi_mask"].shape[1] == 1
    for i, idx in enumerate(batch["index"].tolist()):
        assert torch.equal(torch.as_tensor(batch["image"][i]), torch.flip(expected[idx]["image"], dims=[2]))
        assert torch.equal(torch.as_tensor(batch["roi_mask"][i]), torch.flip(expected[idx]["roi_mask"], dims=[2]))


def test_a_stale_datalist_item_is_refused(small_store):
    item = {"store": str(small_store), "index": 0, "fingerprint": "sha256:" + "0" * 64}
    with pytest.raises(ValueError, match="export the datalist again"):
        LoadStoreSampled()(item)
