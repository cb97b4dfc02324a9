#!/usr/bin/env bash
# Set up a fresh Debian/Ubuntu machine for the studio: system packages, a virtualenv
# in .venv with the pinned Python packages. Safe to run again (it only adds what is missing).
set -euo pipefail
cd "$(dirname "$0")"

APT_PACKAGES=(ffmpeg sox espeak-ng openssl build-essential python3-venv python3-dev)
missing=()
for p in "${APT_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip "setuptools<81" wheel
# One lock for CPU and GPU: torch 2.11.0 from PyPI is the CUDA 13 build and runs on CPU too.
.venv/bin/python -m pip install -q -c constraints.txt -r requirements.txt
echo "setup done: .venv ready"
