# Source this: puts libtorch (from PyTorch 2.13.0 in ./.venv, installed on first use) where tch finds it.
# Usage: . scripts/torch-env.sh
_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_venv="${POOLWATCH_VENV:-$_root/.venv}"
if [ ! -x "$_venv/bin/python" ] || ! "$_venv/bin/python" -c 'import torch' 2>/dev/null; then
    echo "installing torch==2.13.0 into $_venv (a few GB, once)" >&2
    python3 -m venv "$_venv" && "$_venv/bin/pip" install -q torch==2.13.0 numpy onnxruntime
fi
export PATH="$_venv/bin:$PATH"
export LIBTORCH_USE_PYTORCH=1
export LD_LIBRARY_PATH="$("$_venv/bin/python" -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
unset _root _venv
