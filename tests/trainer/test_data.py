"""The streaming dataset: order, sharding over ranks × workers, resume, and the sample format."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from topo.trainer.data import StoreDataset, epoch_order, make_loader, rank_batches


def test_epoch_order_is_a_permutation_grouped_in_windows():
    idx = np.arange(1000)
    a = epoch_order(idx, chunk_size=64, seed=3, epoch=1, shuffle_window=2)
    b = epoch_order(idx, chunk_size=64, seed=3, epoch=1, shuffle_window=2)
    c = epoch_order(idx, chunk_size=64, seed=3, epoch=2, shuffle_window=2)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.array_equal(np.sort(a), idx)
    # A window of two chunks never mixes in a third: the first 128 samples come from exactly two chunks.
    assert len(np.unique(a[:128] // 64)) == 2


@pytest.mark.parametrize("drop_last", [True, False])
def test_rank_batches_cover_the_epoch(drop_last):
    order = np.random.default_rng(0).permutation(203)
    parts = [rank_batches(order, rank=r, world_size=2, batch_size=16, drop_last=drop_last) for r in range(2)]
    served = np.concatenate([b for p in parts for b in p])
    assert len(np.unique(served)) == len(served)  # nothing twice
    if drop_last:
        assert len(parts[0]) == len(parts[1]) and all(len(b) == 16 for p in parts for b in p)
        assert len(served) > 203 - 2 * 16
    else:
        assert np.array_equal(np.sort(served), np.sort(order))  # nothing dropped


def test_two_ranks_times_two_workers_cover_every_sample_once(small_store):
    seen = []
    for rank in range(2):
        ds = StoreDataset(
            str(small_store),
            splits="train",
            batch_size=32,
            seed=1,
            drop_last=False,
            rank=rank,
            world_size=2,
            keys=("index",),
        )
        for batch in make_loader(ds, num_workers=2):
            seen += batch["index"].tolist()
    expected = StoreDataset(str(small_store), splits="train", batch_size=32, rank=0, world_size=1).indices
    assert sorted(seen) == sorted(expected.tolist())


def test_worker_count_does_not_change_the_stream(small_store):
    def stream(workers):
        ds = StoreDataset(
            str(small_store), splits="val", batch_size=8, seed=5, drop_last=False, rank=0, world_size=1, keys=("index",)
        )
        return [i for b in make_loader(ds, num_workers=workers) for i in b["index"].tolist()]

    assert stream(0) == stream(2)


def test_resume_mid_epoch_continues_the_same_order(small_store):
    ds = StoreDataset(str(small_store), splits="train", batch_size=16, seed=2, rank=0, world_size=1, keys=("index",))
    ds.set_epoch(3)
    full = [b["index"].tolist() for b in make_loader(ds)]
    state = ds.state_dict(batches_done=5)
    resumed = StoreDataset(
        str(small_store), splits="train", batch_size=16, seed=2, rank=0, world_size=1, keys=("index",)
    )
    resumed.load_state_dict(state)
    assert [b["index"].tolist() for b in make_loader(resumed)] == full[5:]


def test_samples_are_monai_style_dicts_with_fixed_shapes(small_store):
    ds = StoreDataset(
        str(small_store), splits="test", batch_size=4, shuffle=False, drop_last=False, rank=0, world_size=1
    )
    batch = next(iter(make_loader(ds)))
    g = ds.geometry
    assert batch["image"].shape == (4, g.channels, g.height, g.width) and batch["image"].dtype == torch.uint8
    assert batch["roi_mask"].shape == (4, 1, g.height, g.width)  # channel-first like the image
    assert batch["pd_h0"].shape == (4, g.k0, 2) and batch["pd_h1"].shape == (4, g.k1, 2)
    assert batch["n_h0"].shape == (4,) and (batch["n_h0"] >= 1).all()
    assert len(batch["sample_id"]) == 4 and batch["sample_id"][0].startswith("breastmnist_28/test/")


def test_transform_is_any_dict_callable(small_store):
    def add_flag(sample):
        return {**sample, "flag": sample["label"] * 10}

    ds = StoreDataset(
        str(small_store),
        splits="val",
        batch_size=4,
        shuffle=False,
        drop_last=False,
        rank=0,
        world_size=1,
        transform=add_flag,
        keys=("label",),
    )
    batch = next(iter(make_loader(ds)))
    assert torch.equal(batch["flag"], batch["label"] * 10)


def test_refuses_a_store_with_another_fingerprint(small_store):
    with pytest.raises(ValueError, match="fingerprint"):
        StoreDataset(str(small_store), batch_size=4, expect_fingerprint="sha256:other")


def test_monai_dictionary_transform_drops_in(small_store):
    import monai

    ds = StoreDataset(
        str(small_store),
        splits="val",
        batch_size=4,
        shuffle=False,
        drop_last=False,
        rank=0,
        world_size=1,
        keys=("image", "label"),
        transform=monai.transforms.ScaleIntensityd(keys="image"),
    )
    batch = next(iter(make_loader(ds)))
    assert batch["image"].max() <= 1.0


@pytest.mark.parametrize("split", ["train", "test"])
def test_collated_batches_equal_default_collate_of_the_samples(small_store, split):
    kw = dict(splits=split, batch_size=16, seed=4, drop_last=False, rank=0, world_size=1)
    per_sample = list(make_loader(StoreDataset(str(small_store), **kw)))
    batched = list(make_loader(StoreDataset(str(small_store), collate=True, **kw)))
    assert len(per_sample) == len(batched)
    for a, b in zip(per_sample, batched, strict=True):
        assert a.keys() == b.keys()
        for k in a:
            if isinstance(a[k], torch.Tensor):
                assert a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]), k
            else:
                assert a[k] == b[k], k


def test_a_packed_store_streams_like_the_directory(small_store, tmp_path):
    from topo.store_schema.pack import pack_store

    packed = tmp_path / "demo.zip"
    pack_store(small_store, packed)
    kw = dict(splits="val", batch_size=8, shuffle=False, drop_last=False, rank=0, world_size=1, collate=True)
    a = next(iter(make_loader(StoreDataset(str(small_store), **kw))))
    b = next(iter(make_loader(StoreDataset(str(packed), **kw))))
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["pd_h1"], b["pd_h1"])


@pytest.mark.parametrize(("readahead", "threads", "workers"), [(0, 0, 0), (3, 1, 0), (16, 2, 2)])
def test_read_ahead_does_not_change_the_stream(small_store, readahead, threads, workers):
    kw = dict(splits="train", batch_size=24, seed=7, rank=0, world_size=1, keys=("index", "image", "label"))
    ref = list(make_loader(StoreDataset(str(small_store), collate=True, readahead=0, read_threads=0, **kw)))
    ds = StoreDataset(str(small_store), collate=True, readahead=readahead, read_threads=threads, **kw)
    got = list(make_loader(ds, num_workers=workers))
    assert len(got) == len(ref) > 0
    for a, b in zip(ref, got, strict=True):
        assert all(torch.equal(a[k], b[k]) for k in kw["keys"])


def test_chunks_are_read_ahead_and_dropped_after_their_last_use(small_store):
    from topo.store_schema import open_store
    from topo.trainer.data import _ChunkReader

    ds = StoreDataset(str(small_store), splits="train", batch_size=16, seed=3, rank=0, world_size=1, shuffle_window=2)
    batches = ds.batches()
    chunk = ds.geometry.chunk_size
    st = open_store(small_store)
    reader = _ChunkReader({"labels": st.array("labels")}, chunk, batches, readahead=2, threads=2)
    labels = st.array("labels")[:]
    held = []
    for b, idxs in enumerate(batches):
        reader.advance(b)
        needed = set((idxs // chunk).tolist())
        assert needed <= {c for (_, c) in reader.chunks}  # requested before they are read
        assert np.array_equal(reader.gather("labels", idxs), labels[idxs])
        held.append(len(reader.chunks))
        reader.release(b)
    reader.close()
    # A shuffle window of 2 chunks plus 2 read ahead: never the whole split in memory.
    assert max(held) <= 2 * 2 + 2 < len(np.unique(ds.indices // chunk))
    assert reader.submitted == len(reader.schedule)  # every chunk requested once


def test_collated_images_are_channels_last_views(small_store):
    ds = StoreDataset(str(small_store), splits="val", batch_size=8, rank=0, world_size=1, keys=("image",), collate=True)
    img = next(iter(make_loader(ds)))["image"]
    g = ds.geometry
    assert img.shape == (8, g.channels, g.height, g.width)
    assert img.is_contiguous(memory_format=torch.channels_last)


def test_negative_read_ahead_is_refused(small_store):
    with pytest.raises(ValueError, match="readahead"):
        StoreDataset(str(small_store), batch_size=4, readahead=-1)
