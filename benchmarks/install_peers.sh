#!/usr/bin/env bash
# Install the peer implementations used by the skmoe benchmarks.
#
#   * R + the CRAN package flexmix (Debian packages r-base-core, r-cran-flexmix)
#   * the Python package cgmm (PyPI), into the interpreter given by $PYTHON
#
# Usage:
#   PYTHON=.venv/bin/python bash benchmarks/install_peers.sh
#
# Idempotent: each peer is installed only when it is not already usable, and
# the script says for each one whether it installed it or found it present.
# apt-get needs root (or sudo); set SKIP_APT=1 to install only cgmm.
set -euo pipefail

PYTHON="${PYTHON:-python}"

if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
else
    SUDO="sudo"
fi

have_flexmix() {
    command -v Rscript >/dev/null 2>&1 &&
        Rscript -e 'suppressMessages(library(flexmix))' >/dev/null 2>&1
}

if [ "${SKIP_APT:-0}" = "1" ]; then
    echo "[install_peers] SKIP_APT=1: not touching R / flexmix"
elif have_flexmix; then
    echo "[install_peers] flexmix: already installed ($(Rscript -e 'cat(format(packageVersion("flexmix")))' 2>/dev/null))"
else
    echo "[install_peers] flexmix: installing r-base-core r-cran-flexmix via apt-get"
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends \
        r-base-core r-cran-flexmix
    if have_flexmix; then
        echo "[install_peers] flexmix: installed ($(Rscript -e 'cat(format(packageVersion("flexmix")))' 2>/dev/null))"
    else
        echo "[install_peers] flexmix: installation FAILED" >&2
        exit 1
    fi
fi

if "$PYTHON" -c 'import cgmm' >/dev/null 2>&1; then
    echo "[install_peers] cgmm: already installed in $PYTHON ($("$PYTHON" -m pip show cgmm 2>/dev/null | sed -n 's/^Version: //p'))"
else
    echo "[install_peers] cgmm: installing with $PYTHON -m pip install cgmm"
    "$PYTHON" -m pip install cgmm
    echo "[install_peers] cgmm: installed ($("$PYTHON" -m pip show cgmm 2>/dev/null | sed -n 's/^Version: //p'))"
fi
