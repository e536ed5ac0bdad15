-- A real Neovim (0.12, headless) session against `greencoder serve`.
--
-- Usage:
--   nvim --headless --clean -l tests/neovim/lsp_session.lua FILE SERVER_CMD [SERVER_ARG...]
--
--   FILE        a Python file holding a function with a `# greencoder: bench <call>` comment just
--               above it, and a line inside that function's body that holds only indentation (the
--               cursor goes to the end of the first such line: that is where completions are asked).
--   SERVER_CMD  the language server's command line, e.g.
--               python -m greencoder serve --model DIR --device cpu --debounce-ms 0 --max-new-tokens 16
--
-- Environment (all optional):
--   GREENCODER_NVIM_TIMEOUT_MS  the whole session's limit (default 200000): past it, "timeout" on
--                               stderr and exit 3;
--   GREENCODER_NVIM_CURSOR      "ROW:COL" (1-based row, 0-based byte column) instead of the
--                               first indentation-only line.
-- The caller sets XDG_STATE_HOME, XDG_DATA_HOME, XDG_CONFIG_HOME and XDG_CACHE_HOME to temporary
-- folders (else Neovim's lsp.log and shada land in $HOME).
--
-- What it does, as an editor user would: opens FILE (filetype python), starts the server with
-- fast measurement settings and a handler for the server's `greencoder/ledger` notification,
-- waits for `initialized` and for the model (a pushed ledger with model == "ready"); asks `textDocument/completion` at the
-- cursor and checks an item carries `data.energyKind == "estimated"`; asks
-- `textDocument/inlineCompletion` (triggerKind Invoked) and checks a non-empty insertText; then,
-- with `vim.lsp.inline_completion` enabled, enters Insert mode at the cursor, waits for Neovim's own
-- ghost text and accepts it with `vim.lsp.inline_completion.get()` (bound to <Tab> in Insert mode,
-- as `:help vim.lsp.inline_completion.get()` suggests), leaves Insert mode and checks the buffer
-- grew, then undoes the acceptance (`u`); asks `textDocument/codeAction` on the function, runs
-- "Measure energy of `f`" and waits for the greencoder diagnostic carrying the measurement as
-- `data`, and for the pushed ledger that counts it; asks `textDocument/hover` on the function's
-- name; records the work-done progress Neovim saw. Every wait is on a condition a handler or
-- Neovim sets, never a fixed sleep.
--
-- Success: one JSON line on stdout, {"completion_items": n, "completion_energy_kind": ..., "inline_text": ...,
-- "ghost_text": ..., "accepted": true, "accepted_lines": n, "undone": true, "action": ...,
-- "diagnostic": ..., "diagnostic_line": n, "hover": ..., "progress_titles": [...], "timings": {...}}, and exit 0.
-- Failure: "FAILED: why" on stderr and exit 1 (3 on the overall timeout).

local TIMEOUT_MS = tonumber(vim.env.GREENCODER_NVIM_TIMEOUT_MS or '') or 200000

vim.defer_fn(function()
  io.stderr:write('timeout\n')
  os.exit(3)
end, TIMEOUT_MS)

local uv = vim.uv or vim.loop
local started_at = uv.hrtime()
local timings = {}
local function mark(name)
  timings[name] = math.floor((uv.hrtime() - started_at) / 1e6) / 1000
end

local client ---@type vim.lsp.Client?

local function stop_client()
  if client and not client:is_stopped() then
    client:stop()
    if not vim.wait(5000, function() return client:is_stopped() end, 50) then
      client:stop(true)
      vim.wait(2000, function() return client:is_stopped() end, 50)
    end
  end
end

local function fail(message)
  error({ greencoder_failure = message }, 0)
end

local function check(condition, message)
  if not condition then
    fail(message)
  end
  return condition
end

local function main()
  local args = _G.arg or {}
  local file = check(args[1], 'usage: nvim --headless --clean -l lsp_session.lua FILE SERVER_CMD...')
  local cmd = {}
  for i = 2, #args do
    cmd[#cmd + 1] = args[i]
  end
  check(#cmd > 0, 'no server command given after FILE')
  file = vim.fn.fnamemodify(file, ':p')
  check(vim.fn.filereadable(file) == 1, 'cannot read ' .. file)

  -- No swap files, no "-- INSERT --" on the terminal.
  vim.o.swapfile = false
  vim.o.showmode = false
  vim.o.shortmess = vim.o.shortmess .. 'F'

  vim.cmd.edit(vim.fn.fnameescape(file))
  local bufnr = vim.api.nvim_get_current_buf()
  vim.bo[bufnr].filetype = 'python'
  local original = vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)

  -- The benchmarked function and the cursor.
  local function_name
  for i, line in ipairs(original) do
    if line:match('greencoder:%s*bench%s') then
      for j = i + 1, #original do
        function_name = original[j]:match('^%s*def%s+([%w_]+)') or original[j]:match('^%s*async%s+def%s+([%w_]+)')
        if function_name then
          break
        end
      end
      break
    end
  end
  check(function_name, 'no function under a "# greencoder: bench <call>" comment in ' .. file)
  local row, col
  if vim.env.GREENCODER_NVIM_CURSOR and vim.env.GREENCODER_NVIM_CURSOR ~= '' then
    row, col = vim.env.GREENCODER_NVIM_CURSOR:match('^(%d+):(%d+)$')
    row, col = tonumber(row), tonumber(col)
    check(row and col, 'GREENCODER_NVIM_CURSOR must be ROW:COL, got ' .. vim.env.GREENCODER_NVIM_CURSOR)
  else
    for i, line in ipairs(original) do
      if line:match('^%s+$') then
        row, col = i, #line
        break
      end
    end
    check(row, 'no indentation-only line in ' .. file .. ' to put the cursor on')
  end
  vim.api.nvim_win_set_cursor(0, { row, col })

  -- Work-done progress as Neovim sees it ($/progress -> LspProgress): title of each begin, and ends.
  local progress = { begun = {}, ended = 0, cancellable = {} }
  vim.api.nvim_create_autocmd('LspProgress', {
    callback = function(ev)
      local value = ev.data and ev.data.params and ev.data.params.value
      if type(value) ~= 'table' then
        return
      end
      if value.kind == 'begin' then
        progress.begun[#progress.begun + 1] = value.title
        if value.cancellable then
          progress.cancellable[#progress.cancellable + 1] = value.title
        end
      elseif value.kind == 'end' then
        progress.ended = progress.ended + 1
      end
    end,
  })

  -- The ledger the server pushes whenever it changes (greencoder/ledger): every one is kept.
  local ledgers = {}
  local function ledger()
    return ledgers[#ledgers]
  end

  -- Start the server and attach it to the buffer.
  local client_id = vim.lsp.start({
    name = 'greencoder',
    cmd = cmd,
    handlers = {
      ['greencoder/ledger'] = function(_, result)
        ledgers[#ledgers + 1] = result
      end,
    },
    root_dir = vim.fs.dirname(file),
    init_options = {
      benchRuns = 8,
      benchMinSeconds = 0.05,
      benchCooldown = 0,
      meter = 'estimate',
      debounceMs = 0,
      maxNewTokens = 16,
    },
  }, { bufnr = bufnr })
  client = vim.lsp.get_client_by_id(check(client_id, 'vim.lsp.start gave no client'))
  check(client, 'no client object for id ' .. tostring(client_id))
  check(
    vim.wait(30000, function() return client.initialized or client:is_stopped() end, 50) and client.initialized,
    'the server never finished initialize (stopped: ' .. tostring(client:is_stopped()) .. ')'
  )
  check(vim.lsp.buf_is_attached(bufnr, client.id), 'the client is not attached to the buffer')
  mark('initialized')

  -- Wait for the model (the server loads it in the background after `initialized` and pushes
  -- the ledger when its state changes).
  local state
  local ready = vim.wait(150000, function()
    state = ledger() and ledger().model
    return state == 'ready' or state == 'failed' or client:is_stopped()
  end, 20)
  check(ready and state == 'ready', 'the model is not ready: ' .. tostring(state))
  mark('model_ready')

  local encoding = client.offset_encoding

  -- textDocument/completion at the cursor.
  local completion_params = vim.lsp.util.make_position_params(0, encoding)
  completion_params.context = { triggerKind = 1 }
  local response = client:request_sync('textDocument/completion', completion_params, 60000, bufnr)
  check(response, 'textDocument/completion timed out')
  check(not response.err, 'textDocument/completion failed: ' .. vim.inspect(response.err))
  local items = response.result and (response.result.items or response.result) or {}
  local estimated
  for _, item in ipairs(items) do
    if type(item.data) == 'table' and item.data.energyKind == 'estimated' then
      estimated = item
      break
    end
  end
  check(estimated, 'no completion item with data.energyKind == "estimated": ' .. vim.inspect(items))
  mark('completion')

  -- textDocument/inlineCompletion, asked directly.
  local inline_params = vim.lsp.util.make_position_params(0, encoding)
  inline_params.context = { triggerKind = 1 }
  response = client:request_sync('textDocument/inlineCompletion', inline_params, 60000, bufnr)
  check(response, 'textDocument/inlineCompletion timed out')
  check(not response.err, 'textDocument/inlineCompletion failed: ' .. vim.inspect(response.err))
  local inline_items = response.result and (response.result.items or response.result) or {}
  local inline_text = inline_items[1] and inline_items[1].insertText
  if type(inline_text) == 'table' then
    inline_text = inline_text.value
  end
  check(type(inline_text) == 'string' and inline_text ~= '', 'no inline completion text: ' .. vim.inspect(response.result))
  mark('inline_completion')

  -- Inline completion the way a user gets it: Neovim asks on InsertEnter/CursorMovedI (after its
  -- own 200 ms debounce), shows ghost text (extmarks in namespace nvim.lsp.inline_completion), and
  -- <Tab> (mapped to vim.lsp.inline_completion.get()) accepts it; get() applies via vim.schedule.
  vim.lsp.inline_completion.enable(true, { bufnr = bufnr })
  check(vim.lsp.inline_completion.is_enabled({ bufnr = bufnr }), 'inline completion did not enable')
  local ghost_ns = vim.api.nvim_create_namespace('nvim.lsp.inline_completion')
  local lines_before = vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)
  local chars_before = #table.concat(lines_before, '\n')
  local insert = { mode = nil, ghost = nil, got = nil, accepted = nil }
  vim.keymap.set('i', '<Tab>', function()
    insert.got = vim.lsp.inline_completion.get()
    if not insert.got then
      return '<Tab>'
    end
  end, { expr = true, buffer = bufnr, desc = 'Accept the current inline completion' })
  _G.greencoder_wait_ghost = function()
    insert.mode = vim.api.nvim_get_mode().mode
    vim.wait(60000, function()
      local marks = vim.api.nvim_buf_get_extmarks(bufnr, ghost_ns, 0, -1, { details = true })
      if #marks > 0 then
        local details = marks[1][4] or {}
        local parts = {}
        for _, chunk in ipairs(details.virt_text or {}) do
          parts[#parts + 1] = chunk[1]
        end
        for _, virt_line in ipairs(details.virt_lines or {}) do
          local line = {}
          for _, chunk in ipairs(virt_line) do
            line[#line + 1] = chunk[1]
          end
          parts[#parts + 1] = '\n' .. table.concat(line)
        end
        insert.ghost = table.concat(parts)
        return true
      end
      return false
    end, 50)
  end
  _G.greencoder_wait_accepted = function()
    insert.accepted = vim.wait(5000, function()
      return #table.concat(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), '\n') > chars_before
    end, 20)
  end
  -- `x`: run the keys now, to the final <Esc>; the <Cmd> steps wait (event loop running) while in Insert mode.
  vim.api.nvim_feedkeys(
    vim.keycode('a<Cmd>lua greencoder_wait_ghost()<CR><Tab><Cmd>lua greencoder_wait_accepted()<CR><Esc>'),
    'x',
    false
  )
  check(insert.mode and insert.mode:sub(1, 1) == 'i', 'not in Insert mode when waiting for ghost text: ' .. tostring(insert.mode))
  check(insert.ghost, 'Neovim showed no inline completion (ghost text) in Insert mode')
  check(insert.got, 'vim.lsp.inline_completion.get() had nothing to accept')
  check(insert.accepted, 'the accepted inline completion never reached the buffer')
  local lines_after = vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)
  local chars_after = #table.concat(lines_after, '\n')
  mark('inline_accepted')

  -- Undo the acceptance (the tiny model's text need not be valid Python, and the measurement
  -- needs a function it can parse).
  vim.cmd('silent normal! u')
  local restored = vim.deep_equal(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), lines_before)
  if not restored then
    vim.api.nvim_buf_set_lines(bufnr, 0, -1, false, lines_before)
  end

  -- textDocument/codeAction on the function, then the measurement.
  local action_params = vim.lsp.util.make_range_params(0, encoding)
  action_params.context = { diagnostics = {}, triggerKind = 1 }
  response = client:request_sync('textDocument/codeAction', action_params, 30000, bufnr)
  check(response and not response.err, 'textDocument/codeAction failed: ' .. vim.inspect(response))
  local wanted = 'Measure energy of `' .. function_name .. '`'
  local action
  local titles = {}
  for _, candidate in ipairs(response.result or {}) do
    titles[#titles + 1] = candidate.title
    if candidate.title == wanted then
      action = candidate
    end
  end
  check(action, 'no code action "' .. wanted .. '" among ' .. vim.inspect(titles))
  local command = action.command
  if type(command) == 'string' then -- a bare Command
    command = action
  end
  check(type(command) == 'table' and command.command == 'greencoder.measureEnergy',
    'the action has no greencoder.measureEnergy command: ' .. vim.inspect(action))
  mark('code_action')

  local exec = {}
  client:exec_cmd(command, { bufnr = bufnr }, function(err, result)
    exec.done, exec.err, exec.result = true, err, result
  end)
  check(vim.wait(30000, function() return exec.done end, 50), 'workspace/executeCommand got no answer')
  check(not exec.err, 'workspace/executeCommand failed: ' .. vim.inspect(exec.err))
  check(type(exec.result) == 'table' and exec.result.started, 'the measurement did not start: ' .. vim.inspect(exec.result))

  local diagnostic, data
  vim.wait(150000, function()
    for _, d in ipairs(vim.diagnostic.get(bufnr)) do
      local lsp = d.user_data and d.user_data.lsp
      if d.source == 'greencoder' and lsp and type(lsp.data) == 'table' and lsp.data.kind == 'greencoder.measurement' then
        diagnostic, data = d, lsp.data
        return true
      end
    end
    return client:is_stopped()
  end, 20)
  check(diagnostic, 'no greencoder diagnostic with a measurement as data arrived: ' .. vim.inspect(vim.diagnostic.get(bufnr)))
  mark('diagnostic')
  -- The ledger pushed after the measurement counts it and carries the same data.
  check(vim.wait(10000, function() return ledger() and ledger().measurements == 1 end, 20),
    'no pushed ledger counting the measurement: ' .. vim.inspect(ledger()))

  -- Hover on the function's name shows the measurement.
  local hover_params = {
    textDocument = vim.lsp.util.make_text_document_params(bufnr),
    position = { line = diagnostic.lnum, character = diagnostic.col + 1 },
  }
  response = client:request_sync('textDocument/hover', hover_params, 30000, bufnr)
  check(response and not response.err, 'textDocument/hover failed: ' .. vim.inspect(response))
  local contents = response.result and response.result.contents
  local hover = type(contents) == 'table' and (contents.value or contents[1]) or contents
  check(type(hover) == 'string' and hover:find('energy per call', 1, true), 'no measurement in the hover: ' .. vim.inspect(response.result))
  -- The measurement's progress ends right before the diagnostic is published; let it arrive.
  vim.wait(5000, function() return progress.ended >= #progress.begun end, 50)

  return {
    completion_items = #items,
    completion_energy_kind = estimated.data.energyKind,
    completion_detail = estimated.detail,
    inline_text = inline_text,
    ghost_text = insert.ghost,
    accepted = insert.accepted and chars_after > chars_before,
    accepted_chars = chars_after - chars_before,
    undone = restored,
    action = action.title,
    measure_started = exec.result,
    diagnostic = diagnostic.message,
    diagnostic_data = data,
    ledger_last_measurement = ledger().lastMeasurement,
    ledger_models = vim.tbl_map(function(l) return l.model end, ledgers),
    diagnostic_line = diagnostic.lnum,
    diagnostic_col = diagnostic.col,
    diagnostic_severity = diagnostic.severity,
    hover = hover,
    progress_titles = progress.begun,
    progress_cancellable = progress.cancellable,
    progress_ended = progress.ended,
    function_name = function_name,
    offset_encoding = encoding,
    nvim_version = tostring(vim.version()),
    timings = timings,
  }
end

local ok, result = xpcall(main, function(err)
  if type(err) == 'table' and err.greencoder_failure then
    return err
  end
  return { greencoder_failure = 'error: ' .. debug.traceback(tostring(err), 2) }
end)
stop_client()
if ok then
  io.stdout:write(vim.json.encode(result) .. '\n')
  io.stdout:flush()
  os.exit(0)
end
io.stderr:write('FAILED: ' .. tostring(result.greencoder_failure) .. '\n')
io.stderr:flush()
os.exit(1)
