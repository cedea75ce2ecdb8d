"""The numbers a user reports: the paper's Table 3, gate-weight plots (Fig. 3) and cost tables (Tables 6-7).

Modules: ``records`` (run records and their JSON file), ``table3`` (building Table 3), ``table3_json`` and
``table3_markdown`` (its two renderings), ``gate_weights`` (Fig. 3) and ``cost`` (Tables 6-7).
"""

from topo.trainer.eval.report.cost import cost_table_markdown, model_cost
from topo.trainer.eval.report.gate_weights import gate_weight_summary, plot_gate_weights
from topo.trainer.eval.report.records import (
    AVG,
    VARIANTS,
    RunResult,
    load_run_results,
    run_result_from_probe,
    save_run_results,
)
from topo.trainer.eval.report.table3 import Cell, Comparison, MethodRow, Table3, VariantSummary, build_table
from topo.trainer.eval.report.table3_json import from_json, to_json
from topo.trainer.eval.report.table3_markdown import format_p, to_markdown

__all__ = [
    "AVG",
    "VARIANTS",
    "Cell",
    "Comparison",
    "MethodRow",
    "RunResult",
    "Table3",
    "VariantSummary",
    "build_table",
    "cost_table_markdown",
    "format_p",
    "from_json",
    "gate_weight_summary",
    "load_run_results",
    "model_cost",
    "plot_gate_weights",
    "run_result_from_probe",
    "save_run_results",
    "to_json",
    "to_markdown",
]
