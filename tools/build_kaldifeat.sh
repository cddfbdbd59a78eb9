#!/usr/bin/env bash
# Build a kaldifeat wheel from its sdist against the torch already installed in a
# virtual environment, offline apart from the package index, and cache it.
#
# Usage: tools/build_kaldifeat.sh <python-of-the-venv> <cache-dir> [kaldifeat-version]
# Prints the path of the cached wheel on its last line.
#
# Why this is not a plain `pip install kaldifeat`: kaldifeat ships no wheels, its CMake
# fetches pybind11 from the web, and the PyPI torch 1.13.1 wheel is a CUDA build whose
# CMake config insists on a full CUDA toolkit (docs/stack.md). We hand CMake a
# pybind11 source tree from the package index, and a throw-away "toolkit root" whose
# missing CUDA libraries are stand-ins that `--as-needed` never links (kaldifeat calls
# no CUDA API itself). On a machine with a real toolkit matching torch, the stand-ins
# are harmless.
set -euo pipefail

python=${1:?usage: $0 <venv-python> <cache-dir> [version]}
cache_dir=${2:?usage: $0 <venv-python> <cache-dir> [version]}
version=${3:-1.24}
pybind11_version=3.0.1

die() { echo "build_kaldifeat: ERROR: $*" >&2; exit 1; }

torch_version=$("$python" -c 'import torch; print(torch.__version__)') \
  || die "torch is not importable with $python; install the requirements first"
py_tag=$("$python" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
out_dir=$cache_dir/kaldifeat-$version-torch-$torch_version-$py_tag
cached=$(find "$out_dir" -maxdepth 1 -name 'kaldifeat-*.whl' 2> /dev/null | head -n 1 || true)  # no cache yet: find fails
if [ -n "$cached" ]; then
  echo "$cached"
  exit 0
fi

nvcc_path=$(command -v nvcc || true)
if [ -n "${CUDA_HOME:-}" ]; then
  cuda_root=$CUDA_HOME
elif [ -d /usr/local/cuda ]; then
  cuda_root=$(readlink -f /usr/local/cuda)
elif [ -n "$nvcc_path" ]; then
  cuda_root=$(dirname "$(dirname "$(readlink -f "$nvcc_path")")")
else
  die "torch $torch_version is a CUDA build and its CMake config needs a CUDA toolkit (nvcc and headers).
Install one (e.g. Debian's nvidia-cuda-toolkit) or set CUDA_HOME, then rerun."
fi
[ -x "$cuda_root/bin/nvcc" ] || die "no nvcc under $cuda_root/bin; set CUDA_HOME to a CUDA toolkit root"
command -v cmake > /dev/null || die "cmake is missing (apt-get install cmake)"
command -v g++ > /dev/null || die "g++ is missing (apt-get install g++)"

work=$(mktemp -d "${TMPDIR:-/tmp}/kaldifeat-build.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "build_kaldifeat: fetching kaldifeat==$version and pybind11==$pybind11_version sources" >&2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
kf_sdist=$("$python" "$here/fetch_from_index.py" "$cache_dir/sdist" kaldifeat "kaldifeat-$version.tar.gz" | tail -n 1) \
  || die "could not download the kaldifeat $version sdist from the package index"
pb_sdist=$("$python" "$here/fetch_from_index.py" "$cache_dir/sdist" pybind11 "pybind11-$pybind11_version.tar.gz" | tail -n 1) \
  || die "could not download the pybind11 $pybind11_version sdist from the package index"
mkdir -p "$work/pybind11"
tar -xzf "$pb_sdist" -C "$work/pybind11" --strip-components=1
[ -f "$work/pybind11/CMakeLists.txt" ] || die "the pybind11 sdist has no CMakeLists.txt"

# The throw-away toolkit root.
site=$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
stub=$site/torch/lib/libc10_cuda.so
[ -f "$stub" ] || die "$stub not found: is this torch a CUDA build?"
fake=$work/cuda
mkdir -p "$fake/bin" "$fake/include" "$fake/lib64"
for d in bin include; do
  for f in "$cuda_root/$d"/*; do ln -s "$f" "$fake/$d/"; done
done
for f in "$cuda_root"/*; do
  name=$(basename "$f")
  case $name in bin|include|lib64) ;; *) ln -s "$f" "$fake/$name" ;; esac
done
for f in "$cuda_root"/lib64/*; do ln -s "$f" "$fake/lib64/" 2> /dev/null || true; done
for lib in libcuda libnvrtc libnvToolsExt libcurand libcufft libcublas libcublasLt \
           libcusparse libcusolver libcudart; do
  [ -e "$fake/lib64/$lib.so" ] || ln -s "$stub" "$fake/lib64/$lib.so"
done

cudnn_inc=$site/nvidia/cudnn/include
cudnn_lib=$(find "$site/nvidia/cudnn/lib" -maxdepth 1 -name 'libcudnn.so*' 2> /dev/null | sort | head -n 1)
cmake_args="-DCMAKE_BUILD_TYPE=Release -Dkaldifeat_BUILD_TESTS=OFF"
cmake_args+=" -DFETCHCONTENT_SOURCE_DIR_PYBIND11=$work/pybind11"
cmake_args+=" -DCUDA_TOOLKIT_ROOT_DIR=$fake -DTORCH_CUDA_ARCH_LIST=8.0"
cmake_args+=" -DCMAKE_SHARED_LINKER_FLAGS=-Wl,--as-needed"
if [ -n "$cudnn_lib" ]; then
  cmake_args+=" -DCUDNN_INCLUDE_PATH=$cudnn_inc -DCUDNN_LIBRARY_PATH=$cudnn_lib"
fi

echo "build_kaldifeat: compiling kaldifeat $version against torch $torch_version (takes ~10 min on 2 cores)" >&2
PATH=$fake/bin:$PATH \
KALDIFEAT_CMAKE_ARGS=$cmake_args \
KALDIFEAT_MAKE_ARGS="-j${KALDIFEAT_JOBS:-$(nproc)}" \
  "$python" -m pip wheel --no-deps --no-build-isolation -w "$work/wheel" \
  "$kf_sdist" >&2 \
  || die "compiling kaldifeat failed; see the compiler output above"

# Publish the wheel atomically: a half-copied cache entry must never look finished.
mkdir -p "$cache_dir"
tmp_out=$(mktemp -d "$cache_dir/.kaldifeat-tmp.XXXXXX")
cp "$work"/wheel/kaldifeat-*.whl "$tmp_out/"
mv "$tmp_out" "$out_dir"
find "$out_dir" -maxdepth 1 -name 'kaldifeat-*.whl' | head -n 1
