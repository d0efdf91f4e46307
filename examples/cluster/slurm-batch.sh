#!/bin/bash
# Repair an archive with a Slurm job array: task K repairs shard K of N into the same output
# folder, which must be on a filesystem every node sees.  melrestore reads its shard from
# SLURM_ARRAY_TASK_ID (the shard number, from 1) and SLURM_ARRAY_TASK_COUNT (N).
#
#   job=$(sbatch --parsable --array=1-16 examples/cluster/slurm-batch.sh /archive /archive-repaired)
#   sbatch --dependency=afterany:$job --wrap "melrestore report /archive-repaired"
#
# Rerun shards alone (killed, or cut off by the time limit) with the number of shards given:
#   sbatch --array=3,7 --export=ALL,MELRESTORE_SHARD_COUNT=16 examples/cluster/slurm-batch.sh /archive /archive-repaired
#
#SBATCH --job-name=melrestore
#SBATCH --array=1-16
#SBATCH --cpus-per-task=8
#SBATCH --mem=16G
#SBATCH --time=04:00:00
#SBATCH --output=melrestore-%A_%a.log
set -euo pipefail

IN=${1:?usage: sbatch --array=1-N slurm-batch.sh IN_DIR OUT_DIR}
OUT=${2:?usage: sbatch --array=1-N slurm-batch.sh IN_DIR OUT_DIR}

# One worker per allocated core; at the time limit Slurm sends SIGTERM, and the shard saves its
# report (marked incomplete) before it stops.  Exit status 1 (some file failed) is in the report.
exec melrestore batch "$IN" -o "$OUT" --workers "${SLURM_CPUS_PER_TASK:-0}" --quiet
