#!/usr/bin/env bash
# Installs pytorch-fid (PyPI, pure Python; its dependencies torch, torchvision, numpy, scipy and
# pillow are not pulled: Debian's torch and torchvision are the ones tools/setup.sh installs) into
# a folder of the build tree, for the check of gancu's Inception network against the FID tools'
# own (tools/test_tools.py, InceptionAgainstPyTorch). Only its network code is used: its weights
# are never downloaded.
#
#   tools/setup_pytorch_fid.sh [DIR]     default: ${GANCU_BUILD_DIR:-build}/pytorch-fid
#
# Idempotent. The test finds the folder through $GANCU_PYTORCH_FID_PATH or the default.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-${GANCU_BUILD_DIR:-build}/pytorch-fid}
if PYTHONPATH="$dir" /usr/bin/python3 -c "import pytorch_fid.inception" 2>/dev/null; then
  echo "setup_pytorch_fid: $dir has pytorch-fid"
  exit 0
fi
echo "setup_pytorch_fid: installing pytorch-fid into $dir"
for attempt in 1 2 3; do
  if /usr/bin/python3 -m pip install --quiet --disable-pip-version-check --no-deps --target "$dir" \
      'pytorch-fid==0.3.0'; then
    PYTHONPATH="$dir" /usr/bin/python3 -c "import pytorch_fid.inception; print('setup_pytorch_fid: ok')"
    exit 0
  fi
  sleep $((attempt * 5))
done
echo "setup_pytorch_fid: could not install pytorch-fid from PyPI" >&2
exit 1
