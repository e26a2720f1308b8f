#!/usr/bin/env bash
# Re-vendor htmx and its websocket extension from the npm registry at pinned versions.
#
#   scripts/update_htmx.sh            # fetch the pinned versions below
#   HTMX_VERSION=2.0.12 scripts/update_htmx.sh   # try another version (then update the pins)
#
# Writes dashboard/static/bullmq_dashboard/vendor/{htmx.min.js,htmx-ext-ws.min.js,VERSIONS.txt}.
# Needs: npm, tar. No build step; the files are served as they are.
set -euo pipefail

HTMX_PACKAGE="htmx.org"
HTMX_VERSION="${HTMX_VERSION:-2.0.11}"
WS_PACKAGE="htmx-ext-ws"
WS_VERSION="${WS_VERSION:-2.0.4}"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
vendor_dir="${repo_root}/dashboard/static/bullmq_dashboard/vendor"

tmp_dir="$(mktemp -d)"
trap 'rm -rf "${tmp_dir}"' EXIT

# Download one package tarball with `npm pack` and unpack it into $tmp_dir/<package>/.
fetch() {
    local package="$1" version="$2" tarball
    tarball="$(cd "${tmp_dir}" && npm pack --silent "${package}@${version}" | tail -n 1)"
    mkdir -p "${tmp_dir}/${package}"
    tar -xzf "${tmp_dir}/${tarball}" -C "${tmp_dir}/${package}"
    local got
    got="$(node -p "require('${tmp_dir}/${package}/package/package.json').version" 2>/dev/null || true)"
    if [[ -n "${got}" && "${got}" != "${version}" ]]; then
        echo "error: asked for ${package}@${version}, got ${got}" >&2
        exit 1
    fi
}

fetch "${HTMX_PACKAGE}" "${HTMX_VERSION}"
fetch "${WS_PACKAGE}" "${WS_VERSION}"

htmx_src="${tmp_dir}/${HTMX_PACKAGE}/package/dist/htmx.min.js"
ws_src="${tmp_dir}/${WS_PACKAGE}/package/dist/ws.min.js"
if [[ ! -f "${ws_src}" ]]; then
    ws_src="${tmp_dir}/${WS_PACKAGE}/package/dist/ws.js"
fi
for f in "${htmx_src}" "${ws_src}"; do
    [[ -s "${f}" ]] || { echo "error: missing ${f#"${tmp_dir}"/}" >&2; exit 1; }
done

mkdir -p "${vendor_dir}"
# scripts/update_uplot.sh owns the uPlot lines of VERSIONS.txt: keep them.
uplot_lines="$(grep '^uPlot' "${vendor_dir}/VERSIONS.txt" 2>/dev/null || true)"
install -m 0644 "${htmx_src}" "${vendor_dir}/htmx.min.js"
install -m 0644 "${ws_src}" "${vendor_dir}/htmx-ext-ws.min.js"

cat > "${vendor_dir}/VERSIONS.txt" <<EOF
Vendored front-end files (served as they are, no build step).
Regenerate with scripts/update_htmx.sh and scripts/update_uplot.sh; change the pinned versions there.

htmx.min.js         npm package ${HTMX_PACKAGE}@${HTMX_VERSION}   (file dist/htmx.min.js)   sha256 $(sha256sum "${vendor_dir}/htmx.min.js" | cut -d' ' -f1)
htmx-ext-ws.min.js  npm package ${WS_PACKAGE}@${WS_VERSION}   (file dist/$(basename "${ws_src}"))   sha256 $(sha256sum "${vendor_dir}/htmx-ext-ws.min.js" | cut -d' ' -f1)

htmx and its extension are BSD Zero Clause License (0BSD).
${uplot_lines}
EOF

echo "vendored ${HTMX_PACKAGE}@${HTMX_VERSION} and ${WS_PACKAGE}@${WS_VERSION} into ${vendor_dir#"${repo_root}"/}"
