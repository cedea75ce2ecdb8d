from topo.trainer.eval.run import logged_throughput
from topo.trainer.train_logs import STEP_COLUMNS


def test_throughput_is_read_by_name_when_gate_columns_follow(tmp_path):
    log = tmp_path / "log.csv"
    header = [*STEP_COLUMNS, "gate_vision", "gate_topology"]
    rows = [
        ["5", "0", "0.001", "4.1", "", "37.5", "0.6", "0.4"],
        ["10", "1", "0.001", "4.0", "", "41.25", "0.7", "0.0"],
    ]
    log.write_text("\n".join(",".join(r) for r in [header, *rows]) + "\n")
    assert logged_throughput(log) == 41.25


def test_no_log_no_rate(tmp_path):
    assert logged_throughput(tmp_path / "log.csv") is None
