-- :checkhealth greencoder — what a user needs to see when ghost text does not appear.
local M = {}

function M.check()
  local health = vim.health
  health.start('greencoder')
  if vim.fn.has('nvim-0.11') == 1 then
    health.ok('Neovim ' .. tostring(vim.version()) .. ' (vim.lsp.config / vim.lsp.enable)')
  else
    health.error('Neovim ' .. tostring(vim.version()) .. ' is too old: greencoder needs 0.11 or newer')
    return
  end
  if vim.lsp.inline_completion then
    health.ok('vim.lsp.inline_completion is available: completions show as ghost text')
  else
    health.warn('no vim.lsp.inline_completion (Neovim < 0.12): no ghost text; completions come from '
      .. 'textDocument/completion (<C-x><C-o>, or your completion plugin)')
  end
  local greencoder = package.loaded.greencoder
  if not greencoder then
    health.warn('require("greencoder").setup({...}) has not run')
    return
  end
  local cmd = greencoder.config.cmd
  if type(cmd) == 'function' then
    health.ok('server command: a Lua function (in-process server)')
  elseif vim.fn.executable(cmd[1]) == 1 then
    health.ok(('server command: %s'):format(table.concat(cmd, ' ')))
  else
    health.error(('%q is not executable'):format(cmd[1]), {
      'run bash scripts/bootstrap.sh in the greencoder repository and put its .venv/bin on PATH',
      'or set cmd = { "/path/to/greencoder/.venv/bin/greencoder", "serve" } in setup()',
    })
  end
  local clients = vim.lsp.get_clients({ name = 'greencoder' })
  if #clients == 0 then
    health.info('no greencoder client running (open a ' .. table.concat(greencoder.config.filetypes, ', ') .. ' file)')
  end
  for _, client in ipairs(clients) do
    local buffers = vim.tbl_keys(client.attached_buffers)
    health.ok(('client %d: %s, %d buffer(s) attached'):format(client.id,
      client.initialized and 'initialized' or 'starting', #buffers))
    local report = greencoder.last_report(client)
    if report then
      health.ok(('client %d: energy ledger received (model %s)'):format(client.id, tostring(report.model)))
    elseif client.initialized then
      health.warn(('client %d: no energy ledger yet'):format(client.id),
        { 'the statusline shows what the server pushes (greencoder/ledger); check :LspLog for errors' })
    end
  end
end

return M
