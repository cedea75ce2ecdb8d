"""How much an augmentation changes an image's topology, and which intensities give topo-weak/strong views.

δ(x, T), the relative bottleneck distance between the persistence diagrams of x and T(x), is defined and
computed in :mod:`~topo.pipeline.calibrate.delta`.

**Calibration** (:func:`run_calibration`) evaluates δ for every (combination, s) of a grid on a
class-stratified sample of one split, on Ray tasks over blocks of images, and writes three Parquet tables
into the store: the raw δ rows, their summary per (combination, s), and the derived s-ranges: for each
combination, the interval of s whose median δ (made monotone in s by isotonic regression and interpolated on
a fine grid) lies in each band (topo-weak 5–15 %, topo-strong 15–25 % by default). The ranges are also stored
as plain JSON in the store's ``calibration`` attribute, which :func:`load_ranges` reads for the trainer.

Modules: ``delta`` (δ of one image), ``grid_and_bands`` (the intensity grid and δ bands: defaults, checks,
command-line parsing), ``blocks`` (δ of blocks of images as Ray tasks), ``job`` (:func:`run_calibration`,
resuming), ``tables`` (summary, derived ranges, :func:`load_ranges`), ``display`` (rich table and figure).
"""

from topo.pipeline.calibrate.blocks import PART_SCHEMA, compute_block
from topo.pipeline.calibrate.delta import (
    DELTA_DEFINITION,
    METHOD_VERSION,
    SCALE_DEFINITION,
    SCALE_FLOOR,
    Delta,
    Diagrams,
    config_rng,
    delta_for_image,
    diagram_scale,
    relative_bottleneck,
)
from topo.pipeline.calibrate.display import format_ranges, plot_calibration
from topo.pipeline.calibrate.grid_and_bands import DEFAULT_BANDS, DEFAULT_GRID, parse_bands, parse_grid
from topo.pipeline.calibrate.job import (
    DEFAULT_BLOCK_SIZE,
    CalibrationConfigError,
    CalibrationResult,
    run_calibration,
    select_samples,
)
from topo.pipeline.calibrate.tables import FINE_GRID_POINTS, derive_ranges, load_ranges, summarize

__all__ = [
    "DEFAULT_BANDS",
    "DEFAULT_BLOCK_SIZE",
    "DEFAULT_GRID",
    "DELTA_DEFINITION",
    "FINE_GRID_POINTS",
    "METHOD_VERSION",
    "PART_SCHEMA",
    "SCALE_DEFINITION",
    "SCALE_FLOOR",
    "CalibrationConfigError",
    "CalibrationResult",
    "Delta",
    "Diagrams",
    "compute_block",
    "config_rng",
    "delta_for_image",
    "derive_ranges",
    "diagram_scale",
    "format_ranges",
    "load_ranges",
    "parse_bands",
    "parse_grid",
    "plot_calibration",
    "relative_bottleneck",
    "run_calibration",
    "select_samples",
    "summarize",
]
