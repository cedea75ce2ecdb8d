#!/usr/bin/env bash
# The whole path on the embedded BreastMNIST (780 real ultrasound images, 28²): build-store → calibrate-aug →
# train (stage 1 visual, stage 2 topology, stage 3 MoE fusion) → eval. Training is deliberately short so the demo
# finishes in minutes on two CPU cores; its numbers show that the path works, not what TopoCL can reach.
set -euo pipefail
BIN=${BIN:-.venv/bin}
WS=${TOPO_WORKSPACE:-demo-workspace}
CPUS=${DEMO_CPUS:-2}
SEEDS=${DEMO_SEEDS:-0 1}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$CPUS}

echo "== 1/4 build-store (Otsu ROI, GUDHI cubical persistence, Zarr store in $WS/stores/demo.zarr)"
$BIN/topo build-store --dataset demo --workspace "$WS" --num-cpus "$CPUS" --no-progress
$BIN/topo store verify --workspace "$WS"

echo "== 2/4 calibrate-aug (relative bottleneck distance per augmentation and intensity)"
$BIN/topo calibrate-aug --workspace "$WS" --samples 96 --num-cpus "$CPUS" --no-progress

echo "== 3/4 train: BYOL, stages visual → topo → joint, seeds: $SEEDS"
for seed in $SEEDS; do
  $BIN/topo train --workspace "$WS" --method byol --stage all --seed "$seed" \
    --backbone resnet18 --no-small-input --topo-width 64 --epochs 2 --batch-size 64 --warmup-epochs 1 \
    --lr 2e-3 --num-workers 0 --monitor-every 0 --no-progress --resume \
    --method-option proj_hidden_dim=512 --method-option pred_hidden_dim=512 --method-option proj_dim=128
done

echo "== 4/4 eval: linear probe on frozen features (selection on val, test once), paired t-test over seeds"
$BIN/topo eval --workspace "$WS" --method byol --seeds "$(echo $SEEDS | tr ' ' ',')"
