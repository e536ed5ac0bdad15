-- greencoder for Neovim: energy-aware completions and "measure this function" from `greencoder serve`.
--
-- Everything goes through Neovim's own LSP client (vim.lsp.config + vim.lsp.enable, Neovim >= 0.11);
-- this module only adds what the protocol leaves to the editor: ghost-text completion with an accept
-- key (vim.lsp.inline_completion, Neovim >= 0.12, which runs the item's accept command so the ledger
-- counts accepted characters) and keys that accept its next word or line (partial.lua: they tell the
-- server with `greencoder/didPartiallyAcceptCompletion`), three user commands and a statusline component
-- fed by the ledger the server pushes (notification `greencoder/ledger`; asked once with the
-- request `greencoder/energyReport` when a client attaches). Measurements are shown from the
-- diagnostic's `data` (numbers), never parsed from its message. See `:help greencoder`.

local M = {}
local format = require('greencoder.format')
local partial = require('greencoder.partial')

local NAME = 'greencoder' -- the vim.lsp.config name, the client's name and the settings section
local REPORT = 'greencoder/energyReport'
local LEDGER = 'greencoder/ledger'
local MEASURE = 'greencoder.measureEnergy'
local ACCEPT_DESC = 'greencoder: accept the inline completion'
local ACCEPT_WORD_DESC = 'greencoder: accept the next word of the inline completion'
local ACCEPT_LINE_DESC = 'greencoder: accept the next line of the inline completion'
local uv = vim.uv or vim.loop

-- Every setting `greencoder serve` reads (greencoder/server/settings.py); the server takes camelCase
-- or snake_case and ignores unknown keys, so we warn about unknown keys here instead of letting a
-- typo pass silently.
local SETTINGS = require('greencoder.settings')

local defaults = {
  cmd = { 'greencoder', 'serve' },
  filetypes = { 'python', 'cpp', 'java' },
  root_markers = { '.git', 'pyproject.toml', 'setup.py', 'CMakeLists.txt', 'pom.xml', 'build.gradle' },
  settings = {},
  inline = true, -- ghost text via vim.lsp.inline_completion (Neovim >= 0.12)
  accept_key = '<Tab>', -- Insert-mode key that accepts the ghost text; false: no mapping
  accept_word_key = '<M-Right>', -- Insert-mode key that accepts its next word; false: no mapping
  accept_line_key = '<M-Down>', -- Insert-mode key that accepts its next line; false: no mapping
  statusline = true, -- add the component to Neovim's default statusline
  virtual_text = true, -- show measurements at the end of the function's line (0.11 hides them by default)
  icon = '⚡',
}

M.config = vim.deepcopy(defaults)

local cache = {} ---@type table<integer, table> client id -> last energy report (pushed or asked)
local pushes = {} ---@type table<integer, integer> client id -> ledgers pushed so far
local pending = {} ---@type table<integer, boolean> client id -> a report request is in flight
local augroup

local function notify(message, level)
  vim.notify('greencoder: ' .. message, level or vim.log.levels.INFO)
end

--- The greencoder client attached to `bufnr` (default: current buffer), else any running one.
---@return vim.lsp.Client?
function M.client(bufnr)
  local clients = vim.lsp.get_clients({ name = NAME, bufnr = bufnr or vim.api.nvim_get_current_buf() })
  if #clients == 0 and bufnr == nil then
    clients = vim.lsp.get_clients({ name = NAME })
  end
  for _, client in ipairs(clients) do
    if not client:is_stopped() then
      return client
    end
  end
end

-- ---------------------------------------------------------------------------------------- report

M.joules = function(value) return format.quantity(value, 'J') end
M.format_report = format.report

--- Ask the server for its report, asynchronously (never blocks the UI). A ledger pushed while
--- the request is in flight is newer than its answer, and wins.
---@param callback fun(report: table?, err: any?)
---@param client vim.lsp.Client?
function M.request_report(callback, client)
  client = client or M.client()
  if not client then
    callback(nil, 'no greencoder client is running')
    return
  end
  local pushed_before = pushes[client.id] or 0
  client:request(REPORT, vim.empty_dict(), function(err, result)
    if not err and type(result) == 'table' and (pushes[client.id] or 0) == pushed_before then
      cache[client.id] = result
    end
    callback(result, err)
  end)
end

--- Ask every running greencoder client for its ledger now. The plugin does this once when a
--- client attaches; after that the server pushes each change (`greencoder/ledger`).
function M.refresh()
  for _, client in ipairs(vim.lsp.get_clients({ name = NAME })) do
    if client.initialized and not client:is_stopped() and not pending[client.id] then
      pending[client.id] = true
      M.request_report(function()
        pending[client.id] = nil
        vim.cmd('redrawstatus!')
      end, client)
    end
  end
end

--- The `greencoder/ledger` notification: the server's ledger changed (a completion charged, a
--- measurement finished, the model's state). Kept for the statusline; a new measurement result
--- is announced once.
---@param result table the ledger
---@param ctx lsp.HandlerContext
function M.on_ledger(_, result, ctx)
  if type(result) ~= 'table' then
    return
  end
  local id = ctx.client_id
  local before = cache[id]
  pushes[id] = (pushes[id] or 0) + 1
  cache[id] = result
  vim.cmd('redrawstatus!')
  local last = format.measurement(result.lastMeasurement)
  if last and last.ok and not vim.deep_equal(result.lastMeasurement, before and before.lastMeasurement) then
    -- Short: a message wider than the screen stops Neovim at a hit-enter prompt.
    notify(('%s: %s'):format(last.call, format.short(last, false)))
  end
end

--- The last ledger of `client` (default: the one serving the current buffer), or nil.
---@return table?
function M.last_report(client)
  client = client or M.client(vim.api.nvim_get_current_buf())
  return client and cache[client.id]
end

--- Short text for a statusline, e.g. "⚡ 12.3 J est · 4.1 mJ/char est · 5 compl · 🔋 reduce": the
--- energy of this session's completions, per accepted character once one was accepted, and the
--- power policy when it holds generation back, from the last ledger ("" where no greencoder client
--- serves the buffer).
---@return string
function M.statusline()
  local client = M.client(vim.api.nvim_get_current_buf())
  if not client then
    return ''
  end
  return format.statusline(cache[client.id], M.config.icon)
end

-- Neovim's default statusline gets the component before the ruler; a custom one is left alone
-- (add `%{v:lua.require'greencoder'.statusline()}` or call statusline() from lualine & co).
local COMPONENT = "%(%{v:lua.require'greencoder'.statusline()} %)"
local function add_to_default_statusline()
  local default = vim.api.nvim_get_option_info2('statusline', {}).default
  local current = vim.go.statusline
  if current:find(COMPONENT, 1, true) or (current ~= default and current ~= '') then
    return
  end
  if current == '' then -- Neovim 0.11: the statusline is drawn from 'ruler' when empty
    vim.go.statusline = '%<%f %h%w%m%r %=' .. COMPONENT .. '%-14.(%l,%c%V%) %P'
    return
  end
  local ruler = current:find('%{% &ruler', 1, true)
  vim.go.statusline = ruler and (current:sub(1, ruler - 1) .. COMPONENT .. current:sub(ruler))
    or (current .. ' ' .. COMPONENT)
end

-- -------------------------------------------------------------------------------------- commands

--- Measure the function at the cursor (:GreencoderMeasure). The server runs the benchmark in the
--- background and publishes the result as a diagnostic on the function's name.
function M.measure()
  local bufnr = vim.api.nvim_get_current_buf()
  local client = M.client(bufnr)
  if not client then
    notify('no greencoder client is attached to this buffer', vim.log.levels.WARN)
    return
  end
  local position = vim.lsp.util.make_position_params(0, client.offset_encoding).position
  local arguments = { vim.uri_from_bufnr(bufnr), { line = position.line, character = position.character } }
  client:request('workspace/executeCommand', { command = MEASURE, arguments = arguments }, function(err, result)
    if err then
      notify(err.message or vim.inspect(err), vim.log.levels.WARN)
    elseif type(result) == 'table' and result.started then
      -- Short: a message wider than the screen stops Neovim at a hit-enter prompt.
      notify(('measuring %s in the background'):format(result.call))
    end
  end, bufnr)
end

--- Show the session's energy report (:GreencoderReport) in a floating window (q closes it).
function M.report()
  M.request_report(function(report, err)
    if err or type(report) ~= 'table' then
      notify('no energy report: ' .. (type(err) == 'table' and (err.message or vim.inspect(err)) or tostring(err)),
        vim.log.levels.WARN)
      return
    end
    local lines = M.format_report(report)
    vim.lsp.util.open_floating_preview(lines, 'text', {
      border = 'rounded', focus_id = 'greencoder-report', max_width = math.min(100, vim.o.columns - 4),
    })
  end, M.client(vim.api.nvim_get_current_buf()) or M.client())
end

--- Stop the greencoder clients and start them again (:GreencoderRestart), e.g. after changing
--- the model outside Neovim. Waits for the old server to exit so the new one is not reused.
function M.restart()
  local old = vim.lsp.get_clients({ name = NAME })
  vim.lsp.enable(NAME, false) -- stops and detaches (the documented way to restart, |lsp-restart|)
  local deadline = uv.now() + 5000
  local poll = uv.new_timer()
  local done = false
  poll:start(50, 50, vim.schedule_wrap(function()
    local alive = vim.tbl_filter(function(c) return vim.lsp.get_client_by_id(c.id) ~= nil end, old)
    if done or (#alive > 0 and uv.now() < deadline) then
      return -- done: a tick scheduled before the timer closed
    end
    done = true
    poll:stop()
    poll:close()
    for _, client in ipairs(alive) do
      client:stop(true) -- did not shut down in time
    end
    for _, client in ipairs(old) do
      cache[client.id], pushes[client.id] = nil, nil
    end
    partial.forget()
    vim.lsp.enable(NAME, true) -- re-runs the FileType check on every buffer: new clients attach
    notify('restarted')
  end))
end

-- ----------------------------------------------------------------------------------- accept key

local function feed(keys, remap)
  -- 'i': ahead of whatever is typed next; 'n' unless the original mapping was recursive.
  vim.api.nvim_feedkeys(vim.keycode(keys), (remap and 'm' or 'n') .. 'i', false)
end

--- Run what `key` did before we mapped it (a completion plugin's mapping, or the key itself).
local function fallback(original, key)
  if type(original) ~= 'table' or vim.tbl_isempty(original) then
    feed(key, false)
  elseif original.callback then
    local keys = original.callback()
    if original.expr == 1 and type(keys) == 'string' then
      feed(keys, original.noremap ~= 1)
    end
  elseif original.expr == 1 then
    feed(vim.api.nvim_eval(original.rhs), original.noremap ~= 1)
  else
    feed(original.rhs, original.noremap ~= 1)
  end
end

-- Not an <expr> mapping: a fallback that edits the buffer (cmp, snippets) is not allowed under
-- an expr mapping's textlock. `accept` returns false when there is no ghost text to accept.
local function map_key(bufnr, key, desc, accept)
  if not key or not vim.lsp.inline_completion then
    return
  end
  local original = vim.fn.maparg(key, 'i', false, true)
  if original.desc == desc then
    return -- already ours (a restarted client attaches again)
  end
  vim.keymap.set('i', key, function()
    if not accept() then
      fallback(original, key)
    end
  end, { buffer = bufnr, desc = desc })
end

local function map_accept_keys(bufnr)
  -- The whole suggestion: Neovim inserts it and runs its command (greencoder.acceptSuggestion).
  map_key(bufnr, M.config.accept_key, ACCEPT_DESC, function() return vim.lsp.inline_completion.get() end)
  map_key(bufnr, M.config.accept_word_key, ACCEPT_WORD_DESC, function() return partial.accept('word') end)
  map_key(bufnr, M.config.accept_line_key, ACCEPT_LINE_DESC, function() return partial.accept('line') end)
end

--- Let partial.lua see every inline completion answer of `client` (to know where the item on
--- screen starts inside its suggestion). vim.lsp.inline_completion asks with a callback of its
--- own, so neither a handler nor an autocmd sees the answers: the client's request is wrapped.
local function observe_inline_answers(client)
  if rawget(client, '_greencoder_observed') then
    return
  end
  local request = client.request
  client._greencoder_observed = true
  client.request = function(self, method, params, handler, bufnr)
    if method == 'textDocument/inlineCompletion' and type(handler) == 'function' then
      local inner = handler
      handler = function(err, result, ctx)
        if not err and type(result) == 'table' then
          partial.remember(result.items or result)
        end
        return inner(err, result, ctx)
      end
    end
    return request(self, method, params, handler, bufnr)
  end
end

-- ------------------------------------------------------------------------------------------ setup

local function check_settings(settings)
  local known = {}
  for _, key in ipairs(SETTINGS) do
    known[key:lower()] = true
  end
  for key in pairs(settings) do
    if not known[tostring(key):gsub('_', ''):lower()] then
      notify(('unknown setting %q (the server ignores it); known: %s'):format(key, table.concat(SETTINGS, ', ')),
        vim.log.levels.WARN)
    end
  end
end

--- A diagnostic at the end of its line: a measurement from its `data` ("2.57 mJ ± 7.9 µJ per
--- call (estimated), 189 µs ± 930 ns; −12.5 % energy, significant (p = 1e-4)"); others as they are.
--- The server's full line stays in the diagnostic itself (vim.diagnostic.open_float()).
function M.virtual_text(diagnostic)
  local lsp = diagnostic.user_data and diagnostic.user_data.lsp
  local measurement = format.measurement(type(lsp) == 'table' and lsp.data or nil)
  return measurement and format.short(measurement) or diagnostic.message
end

local function on_attach(args)
  local client = vim.lsp.get_client_by_id(args.data.client_id)
  if not client or client.name ~= NAME then
    return
  end
  if M.config.inline and vim.lsp.inline_completion then
    observe_inline_answers(client)
    vim.lsp.inline_completion.enable(true, { bufnr = args.buf })
    map_accept_keys(args.buf)
  end
  if M.config.virtual_text then
    vim.diagnostic.config({ virtual_text = { format = M.virtual_text } },
      vim.lsp.diagnostic.get_namespace(client.id, false))
  end
  if not cache[client.id] and not pending[client.id] then
    M.refresh() -- once: the ledger as it is before the server's first push
  end
end

-- The same settings go three ways: at startup (initializationOptions), whenever the server pulls
-- section "greencoder" (workspace/configuration, which Neovim answers from `settings`), and pushed
-- to running servers (workspace/didChangeConfiguration).
local function push_settings()
  local settings = M.config.settings
  vim.lsp.config(NAME, {
    init_options = next(settings) and settings or vim.empty_dict(),
    settings = { [NAME] = settings },
  })
  for _, client in ipairs(vim.lsp.get_clients({ name = NAME })) do
    client.settings = { [NAME] = settings }
    client:notify('workspace/didChangeConfiguration', { settings = { [NAME] = settings } })
  end
end

--- Change server settings while it runs, e.g. configure({ maxNewTokens = 32 }): merged into
--- setup()'s settings and sent to running servers; a model change reloads the model in the
--- background (completions keep the old one until then).
---@param settings table
function M.configure(settings)
  check_settings(settings)
  M.config.settings = vim.tbl_extend('force', M.config.settings, settings)
  push_settings()
end

---@param opts table? see `:help greencoder-setup`
function M.setup(opts)
  if vim.fn.has('nvim-0.11') ~= 1 or not vim.lsp.config or not vim.lsp.enable then
    error(('greencoder needs Neovim 0.11 or newer (vim.lsp.config/vim.lsp.enable); this is %s'):format(
      tostring(vim.version())), 0)
  end
  M.config = vim.tbl_deep_extend('force', vim.deepcopy(defaults), opts or {})
  if opts and opts.cmd then
    M.config.cmd = opts.cmd -- a list: replace, never merge element by element
  end
  if opts and opts.filetypes then
    M.config.filetypes = opts.filetypes
  end
  check_settings(M.config.settings)
  -- A function (an in-process server, see |vim.lsp.ClientConfig|) is Neovim's business.
  if type(M.config.cmd) == 'table' and vim.fn.executable(M.config.cmd[1]) ~= 1 then
    local hint = 'put the .venv/bin of greencoder on PATH or set cmd = { "/path/to/.venv/bin/greencoder", "serve" }'
    notify(('%q is not executable: %s'):format(M.config.cmd[1], hint), vim.log.levels.WARN)
  end

  vim.lsp.config(NAME, {
    cmd = M.config.cmd,
    filetypes = M.config.filetypes,
    root_markers = M.config.root_markers,
    handlers = { [LEDGER] = M.on_ledger },
  })
  push_settings() -- also to clients still running from an earlier setup()
  vim.lsp.enable(NAME)

  augroup = vim.api.nvim_create_augroup('greencoder', { clear = true })
  vim.api.nvim_create_autocmd('LspAttach', { group = augroup, callback = on_attach })
  vim.api.nvim_create_user_command('GreencoderMeasure', M.measure,
    { desc = 'greencoder: measure the energy of the function at the cursor' })
  vim.api.nvim_create_user_command('GreencoderReport', M.report,
    { desc = "greencoder: show this session's energy report" })
  vim.api.nvim_create_user_command('GreencoderRestart', M.restart,
    { desc = 'greencoder: restart the language server' })

  if M.config.statusline then
    add_to_default_statusline()
  end
end

return M
