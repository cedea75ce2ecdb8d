"""A folder of hostile files builds to completion: one failure record each, no sample over a memory bound."""

from __future__ import annotations

import io
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fixtures import datasets
from PIL import Image

from topo.pipeline.decode import SampleError, decode

RSS_BOUND_MB = 1024  # the documented worst case of pipeline/decode_limits.py, far above what these need


def _png(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


def _tiff(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="TIFF")
    return buf.getvalue()


def hostile() -> dict[str, tuple[bytes, str]]:
    """File name -> (bytes, expected reason fragment)."""
    good = _png(np.full((32, 32, 3), 120, np.uint8))
    return {
        "wide.png": (_png(np.zeros((1, 200_000), np.uint8)), "extreme aspect ratio"),
        "tall.png": (_png(np.zeros((40_000, 1), np.uint8)), "extreme aspect ratio"),
        "int32_dim.tif": (_tiff(np.full((32, 32), 4095, np.int32)), "would be all black"),
        "negative_float.tif": (_tiff(np.full((32, 32), -3.0, np.float32)), "intensity scale is unknown"),
        "bright_float.tif": (_tiff(np.full((32, 32), 4000.0, np.float32)), "intensity scale is unknown"),
        "truncated.png": (good[: len(good) // 2], "corrupt or truncated"),
        "empty.png": (b"", "empty file"),
        "garbage.jpg": (b"\xff\xd8\xff not really a jpeg" * 10, "not a decodable image"),
    }


@pytest.mark.parametrize("name", list(hostile()))
def test_each_hostile_payload_fails_with_its_reason(name: str) -> None:
    data, reason = hostile()[name]
    with pytest.raises(SampleError, match=reason):
        decode(data, height=64, width=64, channels=3)


def test_a_small_image_is_cropped_before_it_is_upscaled() -> None:
    a = np.zeros((20, 200), np.uint8)
    a[:, 98:102] = 255  # a bright centre stripe
    d = decode(_png(a), height=32, width=32, channels=1)
    assert d.image.shape == (32, 32, 1) and d.image.max() == 255  # the centre survives; no 32x320 intermediate


# VmHWM, not getrusage: Linux carries ru_maxrss over fork + exec, so a child of a large pytest process would report
# the parent's resident size; VmHWM belongs to the child's own address space.
SCRIPT = """
import sys
sys.path[:0] = [sys.argv[1], sys.argv[1] + "/.."]
from test_hostile_inputs import hostile
from topo.pipeline.decode import SampleError, decode
for name, (data, _) in hostile().items():
    try:
        decode(data, height=224, width=224, channels=3)
    except SampleError:
        pass
hwm_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(hwm_kb // 1024)
"""


@pytest.mark.slow  # a subprocess importing cv2 and PIL
def test_decoding_every_hostile_file_stays_under_the_memory_bound() -> None:
    r = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(Path(__file__).parent)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    peak_mb = int(r.stdout.split()[-1])
    assert peak_mb < RSS_BOUND_MB, f"peak RSS {peak_mb} MB"
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss > 0


@pytest.mark.slow  # one small Ray build
def test_the_hostile_folder_builds_to_completion(ray_session, tmp_path: Path) -> None:
    from topo.pipeline.job import BuildConfig, build_store
    from topo.pipeline.ray_runtime import RayResources
    from topo.store_schema import open_store

    data = datasets.write_image_folder(tmp_path / "data", "png", per_class=3, seed=5)
    for name, (payload, _) in hostile().items():
        (data / "benign" / name).write_bytes(payload)
    s = build_store(
        BuildConfig(
            dataset="folder",
            data_dir=str(data),
            out=tmp_path / "s.zarr",
            image_size=32,
            chunk_size=4,
            progress=False,
            resources=RayResources(num_cpus=2),
        )
    )
    assert s.complete
    m = open_store(tmp_path / "s.zarr").manifest().to_pandas()
    failed = m[m["status"] == "failed"]
    expected = {f"data/benign/{n}": reason for n, (_, reason) in hostile().items()}
    assert set(failed["sample_id"]) == set(expected)
    for sid, reason in zip(failed["sample_id"], failed["reason"], strict=True):
        assert expected[sid] in reason, (sid, reason)
    assert (m["status"] == "ok").sum() == 6
