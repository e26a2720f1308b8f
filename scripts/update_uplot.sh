#!/usr/bin/env bash
# Re-vendor uPlot (the throughput charts and sparklines) from the npm registry at a pinned version.
#
#   scripts/update_uplot.sh                       # fetch the pinned version below
#   UPLOT_VERSION=1.6.33 scripts/update_uplot.sh  # try another 1.6.x (then update the pin)
#
# Writes dashboard/static/bullmq_dashboard/vendor/{uPlot.iife.min.js,uPlot.min.css,uPlot.LICENSE} and
# the uPlot lines of VERSIONS.txt. Needs: npm, tar. No build step; the files are served as they are.
set -euo pipefail

UPLOT_VERSION="${UPLOT_VERSION:-1.6.32}"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
vendor_dir="${repo_root}/dashboard/static/bullmq_dashboard/vendor"

tmp_dir="$(mktemp -d)"
trap 'rm -rf "${tmp_dir}"' EXIT

tarball="$(cd "${tmp_dir}" && npm pack --silent "uplot@${UPLOT_VERSION}" | tail -n 1)"
tar -xzf "${tmp_dir}/${tarball}" -C "${tmp_dir}"
got="$(node -p "require('${tmp_dir}/package/package.json').version")"
if [[ "${got}" != "${UPLOT_VERSION}" ]]; then
    echo "error: asked for uplot@${UPLOT_VERSION}, got ${got}" >&2
    exit 1
fi

install -m 0644 "${tmp_dir}/package/dist/uPlot.iife.min.js" "${vendor_dir}/uPlot.iife.min.js"
install -m 0644 "${tmp_dir}/package/dist/uPlot.min.css" "${vendor_dir}/uPlot.min.css"
install -m 0644 "${tmp_dir}/package/LICENSE" "${vendor_dir}/uPlot.LICENSE"

versions="${vendor_dir}/VERSIONS.txt"
grep -v '^uPlot' "${versions}" > "${tmp_dir}/VERSIONS.txt" || true
cat >> "${tmp_dir}/VERSIONS.txt" <<LINES
uPlot.iife.min.js   npm package uplot@${UPLOT_VERSION}   (file dist/uPlot.iife.min.js)   sha256 $(sha256sum "${vendor_dir}/uPlot.iife.min.js" | cut -d' ' -f1)
uPlot.min.css       npm package uplot@${UPLOT_VERSION}   (file dist/uPlot.min.css)   sha256 $(sha256sum "${vendor_dir}/uPlot.min.css" | cut -d' ' -f1)
uPlot.LICENSE       npm package uplot@${UPLOT_VERSION}   (file LICENSE): uPlot is MIT licensed; keep this file beside it.
LINES
install -m 0644 "${tmp_dir}/VERSIONS.txt" "${versions}"

echo "vendored uplot@${UPLOT_VERSION} into ${vendor_dir#"${repo_root}"/}"
