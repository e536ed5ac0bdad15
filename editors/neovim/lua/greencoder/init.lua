-- greencoder for Neovim: energy-aware completions and "measure this function" from `greencoder serve`.
--
-- Everything goes through Neovim's own LSP client (vim.lsp.config + vim.lsp.enable, Neovim >= 0.11);
-- this module only adds what the protocol leaves to the editor: ghost-text completion with an accept
-- key (vim.lsp.inline_completion, Neovim >= 0.12), three user commands and a statusline component
-- fed by the server's custom request `greencoder/energyReport`. See `:help greencoder`.

local M = {}

local NAME = 'greencoder' -- the vim.lsp.config name, the client's name and the settings section
local REPORT = 'greencoder/energyReport'
local MEASURE = 'greencoder.measureEnergy'
local ACCEPT_DESC = 'greencoder: accept the inline completion'
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
  statusline = true, -- keep the report cache fresh and add the component to Neovim's default statusline
  refresh_ms = 5000, -- how often the statusline asks the server for its report
  virtual_text = true, -- show measurements at the end of the function's line (0.11 hides them by default)
  icon = '⚡',
}

M.config = vim.deepcopy(defaults)

local cache = {} ---@type table<integer, table> client id -> last energy report
local pending = {} ---@type table<integer, boolean> client id -> a report request is in flight
local timer ---@type uv.uv_timer_t?
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

--- `value` joules with a unit that keeps three significant digits readable (completions of a
--- small model cost millijoules).
local function joules(value)
  value = tonumber(value) or 0
  local size = math.abs(value)
  if size >= 1000 then
    return ('%.3g kJ'):format(value / 1000)
  elseif size >= 1 or size == 0 then
    return ('%.3g J'):format(value)
  elseif size >= 1e-3 then
    return ('%.3g mJ'):format(value * 1e3)
  end
  return ('%.3g µJ'):format(value * 1e6)
end
M.joules = joules

local KIND = { estimated = 'est', measured = 'meas' }

--- "1.2 J est + 3 mJ meas": joules by kind, never added together (an estimate is not a measurement).
local function by_kind(values, short)
  local parts = {}
  for _, kind in ipairs({ 'estimated', 'measured' }) do
    if type(values) == 'table' and values[kind] then
      parts[#parts + 1] = joules(values[kind]) .. ' ' .. (short and KIND[kind] or kind)
    end
  end
  for kind, value in pairs(type(values) == 'table' and values or {}) do
    if not KIND[kind] then
      parts[#parts + 1] = joules(value) .. ' ' .. kind
    end
  end
  return #parts > 0 and table.concat(parts, ' + ') or joules(0)
end

--- The report as readable lines (what :GreencoderReport shows).
---@param report table the result of greencoder/energyReport
---@return string[]
function M.format_report(report)
  local lines = { 'greencoder energy report', '' }
  local function add(label, text)
    lines[#lines + 1] = ('%-22s %s'):format(label, text)
  end
  add('Model:', tostring(report.model or '?'))
  add('Completions:', ('%d (%d cancelled), %d tokens, %.2f s'):format(report.completions or 0,
    report.cancelled or 0, report.completionTokens or 0, report.completionSeconds or 0))
  add('Energy of completions:', by_kind(report.completionJoules))
  add('Measurements:', tostring(report.measurements or 0))
  add('Energy of benchmarks:', by_kind(report.measuredJoules) .. ' (all runs of all measurements)')
  local last = report.lastMeasurement
  if type(last) == 'table' then
    add('Last measurement:', tostring(last.call))
    -- "f: E per call, T per call, N runs of M calls; energy ESTIMATED ...; vs previous: ...",
    -- one clause a line (a float wraps in the middle of words).
    local summary = tostring(last.summary):gsub('^[^:]+: ', '')
    for i, part in ipairs(vim.split(summary, '; ', { plain = true })) do
      for _, clause in ipairs(i == 1 and vim.split(part, ', ', { plain = true }) or { part }) do
        lines[#lines + 1] = '  ' .. clause
      end
    end
  else
    add('Last measurement:', 'none yet (:GreencoderMeasure in a function with a "greencoder: bench" call)')
  end
  return lines
end

--- Ask the server for its report, asynchronously (never blocks the UI).
---@param callback fun(report: table?, err: any?)
---@param client vim.lsp.Client?
function M.request_report(callback, client)
  client = client or M.client()
  if not client then
    callback(nil, 'no greencoder client is running')
    return
  end
  client:request(REPORT, vim.empty_dict(), function(err, result)
    if not err and type(result) == 'table' then
      cache[client.id] = result
    end
    callback(result, err)
  end)
end

--- Refresh the statusline cache for every running greencoder client.
function M.refresh()
  for _, client in ipairs(vim.lsp.get_clients({ name = NAME })) do
    if client.initialized and not client:is_stopped() and not pending[client.id] then
      pending[client.id] = true
      local before = vim.inspect(cache[client.id])
      M.request_report(function()
        pending[client.id] = nil
        if vim.inspect(cache[client.id]) ~= before then
          vim.cmd('redrawstatus!')
        end
      end, client)
    end
  end
end

--- Short text for a statusline, e.g. "⚡ 12.3 J est · 5 compl": the energy of this session's
--- completions from the last cached report ("" where no greencoder client serves the buffer).
---@return string
function M.statusline()
  local client = M.client(vim.api.nvim_get_current_buf())
  local report = client and cache[client.id]
  if not report then
    return client and (M.config.icon .. ' starting') or ''
  end
  if report.model == 'loading' then
    return M.config.icon .. ' loading model'
  elseif report.model == 'failed' then
    return M.config.icon .. ' model failed'
  end
  local text = ('%s %s · %d compl'):format(M.config.icon, by_kind(report.completionJoules, true), report.completions or 0)
  if (report.measurements or 0) > 0 then
    text = text .. (' · %d meas'):format(report.measurements)
  end
  return text
end

-- A timer only while clients run: statusline() reads the cache and never waits on the server.
local function start_timer()
  if timer or not M.config.statusline then
    return
  end
  timer = uv.new_timer()
  timer:start(0, M.config.refresh_ms, vim.schedule_wrap(function()
    if #vim.lsp.get_clients({ name = NAME }) == 0 then
      if timer then
        timer:stop()
        timer:close()
        timer = nil
      end
      return
    end
    M.refresh()
  end))
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
      cache[client.id] = nil
    end
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
-- an expr mapping's textlock.
local function map_accept_key(bufnr)
  local key = M.config.accept_key
  if not key or not vim.lsp.inline_completion then
    return
  end
  local original = vim.fn.maparg(key, 'i', false, true)
  if original.desc == ACCEPT_DESC then
    return -- already ours (a restarted client attaches again)
  end
  vim.keymap.set('i', key, function()
    if not vim.lsp.inline_completion.get() then
      fallback(original, key)
    end
  end, { buffer = bufnr, desc = ACCEPT_DESC })
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

--- The diagnostic's summary, short enough for the end of a line: "2.54 mJ ± 15.3 µJ per call
--- (estimated), 295 µs ± 70.8 µs; vs previous -3.1 %, not significant". The full text stays in
--- the diagnostic itself (vim.diagnostic.open_float(), hover).
local function short_measurement(diagnostic, with_time)
  local message = diagnostic.message
  local energy, time = message:match(': (.-) per call, (.-) per call')
  if not energy then
    return message -- a failed measurement: say it all
  end
  local text = ('%s per call (%s)'):format(energy, message:find('energy ESTIMATED', 1, true) and 'estimated' or 'measured')
  if with_time ~= false then
    text = text .. ', ' .. time
  end
  local change = message:match('vs previous: energy (%S+ %%)')
  if change then
    text = text .. ('; vs previous %s, %s'):format(change,
      message:find('not significant', 1, true) and 'not significant' or 'significant')
  elseif message:find('not compared with the previous measurement', 1, true) then
    text = text .. '; not compared with the previous one'
  end
  return text
end

local function on_attach(args)
  local client = vim.lsp.get_client_by_id(args.data.client_id)
  if not client or client.name ~= NAME then
    return
  end
  if M.config.inline and vim.lsp.inline_completion then
    vim.lsp.inline_completion.enable(true, { bufnr = args.buf })
    map_accept_key(args.buf)
  end
  if M.config.virtual_text then
    vim.diagnostic.config({ virtual_text = { format = function(d) return short_measurement(d) end } },
      vim.lsp.diagnostic.get_namespace(client.id, false))
  end
  start_timer()
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
  if vim.fn.executable(M.config.cmd[1]) ~= 1 then
    local hint = 'put the .venv/bin of greencoder on PATH or set cmd = { "/path/to/.venv/bin/greencoder", "serve" }'
    notify(('%q is not executable: %s'):format(M.config.cmd[1], hint), vim.log.levels.WARN)
  end

  vim.lsp.config(NAME, {
    cmd = M.config.cmd,
    filetypes = M.config.filetypes,
    root_markers = M.config.root_markers,
  })
  push_settings() -- also to clients still running from an earlier setup()
  vim.lsp.enable(NAME)

  augroup = vim.api.nvim_create_augroup('greencoder', { clear = true })
  vim.api.nvim_create_autocmd('LspAttach', { group = augroup, callback = on_attach })
  -- Statusline after completions: Neovim reports finished requests with LspRequest.
  vim.api.nvim_create_autocmd('LspRequest', {
    group = augroup,
    callback = function(args)
      local request = args.data and args.data.request
      if request and request.type == 'complete' and (request.method or ''):find('ompletion$') then
        local client = vim.lsp.get_client_by_id(args.data.client_id)
        if client and client.name == NAME then
          vim.defer_fn(M.refresh, 100) -- the ledger counts a completion once its generation ends
        end
      end
    end,
  })
  -- A measurement ends with a progress 'end' whose message is the result: say it, refresh.
  vim.api.nvim_create_autocmd('LspProgress', {
    group = augroup,
    pattern = 'end',
    callback = function(args)
      local client = vim.lsp.get_client_by_id(args.data.client_id)
      local value = args.data.params and args.data.params.value or {}
      if client and client.name == NAME and type(value.message) == 'string' and value.message:find('per call', 1, true) then
        local name = value.message:match('^([^:]+):') or '?'
        notify(name .. ': ' .. short_measurement({ message = value.message }, false))
      end
      if client and client.name == NAME then
        M.refresh()
      end
    end,
  })

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
