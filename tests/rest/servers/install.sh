#!/usr/bin/env bash
# Install the real CRM servers the REST tests run against, from the package registries, into a
# cache directory; .ci/run calls it before the tests. Idempotent: a part already installed for
# the same pins is skipped in well under a second.
#
#   BottleCRM  PyPI django-crm, pinned in bottlecrm-requirements.txt, in a venv of its own on
#              Python >= 3.12; then its migrated template database (needs PostgreSQL; when it
#              is down, the first test start builds it instead).
#   Directus   npm directus, pinned in directus-npm/package-lock.json (npm ci); node-gyp builds
#              sqlite3 and isolated-vm against the local Node headers.
#
# Usage: tests/rest/servers/install.sh [bottlecrm] [directus]     (both by default)
# Cache: $ENGINY_TEST_SERVERS_DIR, default ${XDG_CACHE_HOME:-~/.cache}/enginy-test-servers.
# Python for BottleCRM: $ENGINY_BOTTLECRM_PYTHON, else the first of python3.12, python3.13,
# pyenv's 3.12.x / 3.13.x and /usr/bin/python3.1[23] that actually runs (a pyenv shim may
# exist and still fail).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
layout() { python3 "$here/_layout.py" "$1"; }
log() { printf 'install.sh: %s\n' "$*" >&2; }

cache=$(layout cache)
mkdir -p "$cache"

# One installer per part at a time (another worktree may run this concurrently).
locked() {
    local name=$1
    shift
    exec {fd}>"$cache/.lock-$name"
    flock "$fd"
    "$@"
    exec {fd}>&-
}

find_python312() {
    local candidate
    local -a candidates=()
    [[ -n "${ENGINY_BOTTLECRM_PYTHON:-}" ]] && candidates+=("$ENGINY_BOTTLECRM_PYTHON")
    candidates+=(python3.12 python3.13)
    candidates+=("${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12*/bin/python3.12)
    candidates+=("${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.13*/bin/python3.13)
    candidates+=(/usr/bin/python3.12 /usr/bin/python3.13 /usr/local/bin/python3.12)
    for candidate in "${candidates[@]}"; do
        if "$candidate" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 12))' \
            >/dev/null 2>&1; then
            command -v "$candidate" 2>/dev/null || echo "$candidate"
            return 0
        fi
    done
    return 1
}

install_bottlecrm() {
    local home python started
    home=$(layout bottlecrm-home)
    if [[ -f "$home/.installed" ]]; then
        log "BottleCRM already installed in $home"
    else
        started=$SECONDS
        if ! python=$(find_python312); then
            log "BottleCRM needs Python >= 3.12 (django-crm 1.35 requires it); none found." \
                "Install one (pyenv install 3.12) or set ENGINY_BOTTLECRM_PYTHON."
            return 1
        fi
        log "installing BottleCRM into $home with $python"
        rm -rf "$home"
        mkdir -p "$home"
        "$python" -m venv "$home/venv"
        "$home/venv/bin/python" -m pip install --quiet --quiet --disable-pip-version-check \
            --no-input --require-virtualenv -r "$here/bottlecrm-requirements.txt"
        cp "$here/bottlecrm-requirements.txt" "$home/"
        touch "$home/.installed"
        log "BottleCRM installed in $((SECONDS - started)) s"
    fi
    started=$SECONDS
    if "$home/venv/bin/python" "$here/bottlecrm_template.py"; then
        log "BottleCRM template checked in $((SECONDS - started)) s"
    else
        log "BottleCRM's template database could not be prepared now (is PostgreSQL up?);" \
            "the first test start will build it"
    fi
}

install_directus() {
    local home started
    home=$(layout directus-home)
    if [[ -f "$home/.installed" ]]; then
        log "Directus already installed in $home"
        return 0
    fi
    started=$SECONDS
    log "installing Directus into $home (npm ci: about 1,100 packages, ~470 MB)"
    rm -rf "$home"
    mkdir -p "$home"
    cp "$here/directus-npm/package.json" "$here/directus-npm/package-lock.json" "$home/"
    # node-gyp cannot download Node's headers here; build against the installed ones.
    if [[ -z "${npm_config_nodedir:-}" && -f /usr/include/node/node_version.h ]]; then
        export npm_config_nodedir=/usr
    fi
    (cd "$home" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    touch "$home/.installed"
    log "Directus installed in $((SECONDS - started)) s"
}

parts=("$@")
[[ ${#parts[@]} -eq 0 ]] && parts=(bottlecrm directus)
for part in "${parts[@]}"; do
    case $part in
        bottlecrm) locked bottlecrm install_bottlecrm ;;
        directus) locked directus install_directus ;;
        *)
            log "unknown part '$part' (bottlecrm, directus)"
            exit 2
            ;;
    esac
done
