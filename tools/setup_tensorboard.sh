#!/usr/bin/env bash
# Installs the tensorboard Python package into a virtual environment, for the test that reads
# gancu's event files back with TensorBoard's own loader (tests/tensorboard_test.cpp, through
# tools/read_tfevents.py). Debian 12 has no python3-tensorboard, so it comes from PyPI.
#
#   tools/setup_tensorboard.sh [VENV]     default: ${GANCU_BUILD_DIR:-build}/tensorboard-venv
#
# Idempotent: an environment that already imports tensorboard is left as it is. The test finds the
# environment in the build folder (or through $GANCU_TENSORBOARD_PYTHON) and skips itself, saying
# so, where there is none. Needs python3-venv (tools/setup.sh installs it) and access to PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${1:-${GANCU_BUILD_DIR:-build}/tensorboard-venv}
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import tensorboard" 2>/dev/null; then
  echo "setup_tensorboard: $venv has tensorboard $("$venv/bin/python" -c 'import tensorboard; print(tensorboard.__version__)')"
  exit 0
fi
echo "setup_tensorboard: installing tensorboard into $venv"
/usr/bin/python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check 'tensorboard>=2.14,<3'
"$venv/bin/python" -c "import tensorboard; print('setup_tensorboard: tensorboard', tensorboard.__version__)"
