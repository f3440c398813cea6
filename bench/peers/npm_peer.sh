# Shared by the peer installers (sourced, not run): install one pinned npm
# package into a git-ignored directory, idempotently.
#
#   npm_peer_install SCRIPT PACKAGE VERSION MIN_NODE TARGET
#
# SCRIPT names the caller in messages; TARGET is created and becomes the
# current directory; nothing is done when PACKAGE@VERSION is already there.
npm_peer_install() {
  local script="$1" package="$2" version="$3" min_node="$4" target="$5"
  for tool in node npm; do
    if ! command -v "$tool" >/dev/null 2>&1; then
      echo "$script: '$tool' not found: install Node.js $min_node or newer (with npm) to benchmark against $package" >&2
      exit 1
    fi
  done
  local node_major
  node_major="$(node -p 'process.versions.node.split(".")[0]')"
  if [ "$node_major" -lt "$min_node" ]; then
    echo "$script: Node.js $(node --version) is too old for $package@$version (need $min_node or newer)" >&2
    exit 1
  fi
  mkdir -p "$target"
  cd "$target"
  local installed
  installed="$(node -p "try { require('./node_modules/$package/package.json').version } catch (e) { '' }" 2>/dev/null || true)"
  if [ "$installed" = "$version" ]; then
    echo "$script: $package@$version already installed in $(pwd)" >&2
    return
  fi
  if [ ! -f package.json ]; then
    printf '{\n  "name": "openledger-bench-peer",\n  "private": true,\n  "description": "Peer for `openledger bench`; installed by bench/peers/%s, git-ignored."\n}\n' "$script" > package.json
  fi
  echo "$script: npm install $package@$version into $(pwd)" >&2
  if ! npm install --no-audit --no-fund --save-exact "$package@$version" >&2; then
    echo "$script: npm install failed (no network or registry access?)" >&2
    exit 1
  fi
}
