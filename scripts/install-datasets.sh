#!/usr/bin/env bash
# Install Debian's dataset-fashion-mnist (all 70,000 Fashion-MNIST images as IDX files)
# so that load_dataset("fashion-mnist") works and its test runs instead of skipping.
#
# The package is in Debian's main archive, so the machine's own apt sources serve it
# (no host name is written here). Idempotent: does nothing when the files are present.
# Elsewhere it prints how to get the files and exits 0 (the dataset is optional).
set -euo pipefail

for dir in /usr/share/datasets/fashion-mnist /usr/share/fashion-mnist; do
    if ls "$dir"/t10k-labels-idx1-ubyte* >/dev/null 2>&1; then
        echo "Fashion-MNIST already installed in $dir"
        exit 0
    fi
done

if ! command -v apt-get >/dev/null 2>&1 || ! apt-cache show dataset-fashion-mnist >/dev/null 2>&1; then
    echo "note: Debian's dataset-fashion-mnist is not available here; to use Fashion-MNIST, put its" \
         "four IDX files in a folder and load it with load_dataset('fashion-mnist', path=FOLDER)" >&2
    exit 0
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends dataset-fashion-mnist
