#!/usr/bin/env bash
# Re-vendors Leaflet into hub/web/static/vendor/leaflet from the npm registry. The vendored files
# are committed, so neither the build nor the hub at run time needs npm or a CDN; run this only to
# move to another Leaflet version, then check the map page and re-take docs/screenshots.
set -euo pipefail
version="${1:-1.9.4}"
here="$(cd "$(dirname "$0")" && pwd)"
build="$(mktemp -d)"
trap 'rm -rf "$build"' EXIT
(cd "$build" && npm init -y >/dev/null && npm install --no-audit --no-fund "leaflet@$version" >/dev/null)
src="$build/node_modules/leaflet"
dst="$here/static/vendor/leaflet"
rm -rf "$dst"
mkdir -p "$dst/images"
cp "$src/dist/leaflet.js" "$src/dist/leaflet.css" "$src/LICENSE" "$dst/"
cp "$src/dist/images/"*.png "$dst/images/"
echo "$version" >"$dst/VERSION"
echo "Leaflet $version vendored into $dst"
