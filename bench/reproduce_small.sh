#!/usr/bin/env bash
# Small-scale reproduction on CPU: baseline (stage-1 encoder) vs TopoCL (fused encoder), BYOL and SimCLR,
# 5 pretraining seeds, linear probe (selection on val, test once), paired t-test. ResNet-18 with its standard stem at
# 28², topology encoder width 128 (the paper: ResNet-50 at 224², width 384, 150 epochs) — what two CPU cores allow.
#   bash bench/reproduce_small.sh [DATASET] [EPOCHS]      (DATASET: breastmnist | pneumoniamnist; data in ../shared/data)
#   DATA_DIR=../shared/data/mednist_64_small.npz bash bench/reproduce_small.sh npz 2      (MedNIST, 64²)
# METHODS (default "byol simclr") and SEEDS (default "0 1 2 3 4") choose the runs; each run resumes if interrupted.
# WARMUP (epochs of linear warm-up, default 2) should stay well below EPOCHS.
set -euo pipefail
BIN=${BIN:-.venv/bin}
DATASET=${1:-breastmnist}
EPOCHS=${2:-15}
WARMUP=${WARMUP:-2}
DATA_DIR=${DATA_DIR:-../shared/data}
WS=${REPRO_WORKSPACE:-bench/.repro-workspace}
SEEDS=${SEEDS:-0 1 2 3 4}
METHODS=${METHODS:-byol simclr}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

$BIN/topo build-store --dataset "$DATASET" --data-dir "$DATA_DIR" --workspace "$WS" --num-cpus 2 --no-progress
$BIN/topo calibrate-aug --dataset "$DATASET" --workspace "$WS" --samples 128 --num-cpus 2 --no-progress
for method in $METHODS; do
  heads=(--method-option proj_hidden_dim=512 --method-option proj_dim=128)
  [ "$method" = byol ] && heads+=(--method-option pred_hidden_dim=512)
  for seed in $SEEDS; do
    $BIN/topo train --dataset "$DATASET" --workspace "$WS" --method "$method" --stage all --seed "$seed" \
      --backbone resnet18 --no-small-input --topo-width 128 --epochs "$EPOCHS" --batch-size 64 --warmup-epochs "$WARMUP" \
      --lr 2e-3 --num-workers 0 --monitor-every 0 --no-progress --resume "${heads[@]}"
  done
  $BIN/topo eval --dataset "$DATASET" --workspace "$WS" --method "$method" --seeds "$(echo $SEEDS | tr ' ' ',')"
done
