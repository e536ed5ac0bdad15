-- The Neovim plugin (editors/neovim) in a real Neovim 0.12, installed the packpath way.
--
-- Usage (this file is the user's config, so packages load as they do for a user):
--   GREENCODER_PLUGIN_SESSION='{"cmd": [...], "timeout_ms": 220000, "helpdoc": "DIR"}' \
--   nvim --headless -u tests/neovim/plugin_session.lua -n FILE
--
-- The caller links editors/neovim into $XDG_DATA_HOME/nvim/site/pack/greencoder/start/greencoder
-- and points every XDG_* variable at temporary folders. No --clean and no --noplugin: Neovim finds
-- the plugin on 'packpath' exactly as after a user's install; `-u` only replaces init.lua.
--
-- FILE: a Python file with a function under a "# greencoder: bench <call>" comment and, in that
-- function's body, a line holding only indentation (where completions are asked).
-- "cmd": the server's command line for setup({ cmd = ... }); "helpdoc": a folder holding a copy of
-- doc/greencoder.txt in doc/ (optional: :helptags runs there, not in the repository).
--
-- What it does, as a user would, after VimEnter: waits for the plugin's client (started by
-- vim.lsp.enable on FileType python) and the model; presses <Tab> with no suggestion (the plugin
-- must fall back to the <Tab> mapping that existed before it: here one that types ORIG); waits for
-- ghost text in Insert mode and accepts it with <Tab> (the pushed ledger then counts accepted
-- characters); undoes; types "x" and accepts the next word of the new suggestion with <M-Right>
-- (the ledger counts more accepted characters); :GreencoderMeasure in the function
-- until the measurement's diagnostic (its data, and the virtual text the plugin draws from it), and
-- again (compared with the first); :GreencoderReport (floating window); statusline(), fed by the
-- server's greencoder/ledger pushes; :GreencoderRestart until a new client is attached and its
-- model ready; configure({ maxNewTokens = 4 }) on the running server; :checkhealth greencoder;
-- :help greencoder-commands. Every wait is on a condition the plugin or the server sets (the
-- pushed ledger, a diagnostic, an extmark), never a fixed sleep.
-- Success: one JSON line of facts on stdout, exit 0. Failure: "FAILED: why" on stderr, exit 1;
-- past timeout_ms: "timeout" on stderr, exit 3.

local uv = vim.uv or vim.loop

-- Headless Neovim with a file waits for input forever: every way out must end the process.
local function die(message, code)
  io.stderr:write(message .. '\n')
  io.stderr:flush()
  os.exit(code)
end
local decoded, params = pcall(vim.json.decode, vim.env.GREENCODER_PLUGIN_SESSION or '')
if not decoded or type(params) ~= 'table' then
  die('FAILED: GREENCODER_PLUGIN_SESSION is not a JSON object: ' .. tostring(vim.env.GREENCODER_PLUGIN_SESSION), 1)
end

-- A libuv timer, not vim.defer_fn: it fires even while the script blocks in vim.wait().
local guard = uv.new_timer()
guard:start(params.timeout_ms or 200000, 0, function() die('timeout', 3) end)

vim.o.swapfile = false
vim.o.shortmess = vim.o.shortmess .. 'F'

-- Messages the plugin shows, kept for the facts (headless Neovim has nowhere to show them).
local notes = {}
vim.notify = function(message, level)
  notes[#notes + 1] = { message = tostring(message), level = level }
end

-- A <Tab> mapping from "another plugin": with no ghost text, the plugin's <Tab> must reach it.
vim.keymap.set('i', '<Tab>', function() return 'ORIG' end, { expr = true, desc = 'stand-in for a completion plugin' })

-- The user's config: the README's setup call.
local setup_ok, setup_err = pcall(function()
  require('greencoder').setup({
    cmd = params.cmd,
    settings = { debounceMs = 0, maxNewTokens = 16, benchRuns = 8, benchMinSeconds = 0.05, benchCooldown = 0, meter = 'estimate' },
  })
end)

local started_at = uv.hrtime()
local timings = {}
local function mark(name)
  timings[name] = math.floor((uv.hrtime() - started_at) / 1e6) / 1000
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

local function text_of(bufnr)
  return table.concat(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), '\n')
end

local function greencoder_client(bufnr)
  for _, client in ipairs(vim.lsp.get_clients({ name = 'greencoder', bufnr = bufnr })) do
    if not client:is_stopped() then
      return client
    end
  end
end

local function wait_ready(bufnr, old_id)
  local client
  check(vim.wait(30000, function()
    client = greencoder_client(bufnr)
    return client ~= nil and client.id ~= old_id and client.initialized
  end, 50), 'no initialized greencoder client attached to the buffer' .. (old_id and ' after the restart' or ''))
  mark(old_id and 'restart_attached' or 'attached')
  -- The model's state arrives with the ledger the server pushes (greencoder/ledger).
  local state
  local ready = vim.wait(150000, function()
    local report = require('greencoder').last_report(client)
    state = report and report.model
    return state == 'ready' or state == 'failed' or client:is_stopped()
  end, 50)
  check(ready and state == 'ready', 'the model is not ready: ' .. tostring(state))
  return client
end

--- The greencoder diagnostic from a measurement (its `data` says so), other than `not_this`.
local function measurement_diagnostic(bufnr, not_this)
  for _, d in ipairs(vim.diagnostic.get(bufnr)) do
    local data = d.user_data and d.user_data.lsp and d.user_data.lsp.data
    if d.source == 'greencoder' and type(data) == 'table' and data.kind == 'greencoder.measurement'
      and not vim.deep_equal(data, not_this) then
      return d, data
    end
  end
end

--- The virtual text drawn for `d` at the end of its line, or nil while none is drawn.
local function drawn_virtual_text(bufnr, d)
  local virt_ns = vim.diagnostic.get_namespace(d.namespace).user_data.virt_text_ns
  for _, extmark in ipairs(virt_ns and vim.api.nvim_buf_get_extmarks(bufnr, virt_ns, { d.lnum, 0 }, { d.lnum, -1 },
    { details = true }) or {}) do
    local text = table.concat(vim.tbl_map(function(chunk) return chunk[1] end, extmark[4].virt_text or {}))
    return (text:gsub('^[^%w]*', '')) -- the sign Neovim puts before it
  end
end

local function floating_text()
  for _, win in ipairs(vim.api.nvim_list_wins()) do
    if vim.api.nvim_win_get_config(win).relative ~= '' then
      return table.concat(vim.api.nvim_buf_get_lines(vim.api.nvim_win_get_buf(win), 0, -1, false), '\n')
    end
  end
end

local function main()
  check(setup_ok, 'setup() failed: ' .. tostring(setup_err))
  local greencoder = require('greencoder')
  local bufnr = vim.api.nvim_get_current_buf()
  check(vim.bo[bufnr].filetype == 'python', 'the file did not get filetype python: ' .. vim.bo[bufnr].filetype)
  local loaded_from = debug.getinfo(greencoder.setup, 'S').source:gsub('^@', '')
  local original = vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)

  local function_name, function_row, blank_row
  for i, line in ipairs(original) do
    if not function_name and line:match('greencoder:%s*bench%s') then
      for j = i + 1, #original do
        function_name = original[j]:match('^%s*def%s+([%w_]+)')
        if function_name then
          function_row = j
          break
        end
      end
    end
    if function_row and not blank_row and i > function_row and line:match('^%s+$') then
      blank_row = i
    end
  end
  check(function_name and blank_row, 'need a benchmarked function with an indentation-only line in its body')

  -- 1. The plugin's client: started by vim.lsp.enable on FileType, not by this script.
  local client = wait_ready(bufnr)
  mark('model_ready')
  local first_id = client.id
  local settings_sent = {
    init_options = client.config.init_options and client.config.init_options.benchRuns,
    workspace_configuration = vim.tbl_get(client.settings or {}, 'greencoder', 'benchRuns'),
  }
  check(vim.lsp.inline_completion.is_enabled({ bufnr = bufnr }), 'the plugin did not enable inline completion')
  local accept_map = vim.fn.maparg('<Tab>', 'i', false, true)
  check(accept_map.buffer == 1 and accept_map.desc:find('greencoder', 1, true),
    'no buffer-local greencoder <Tab> mapping: ' .. vim.inspect(accept_map))

  -- 2. <Tab> with no ghost text yet (Neovim asks only after its debounce): the old mapping runs.
  vim.api.nvim_win_set_cursor(0, { blank_row, #original[blank_row] })
  vim.api.nvim_feedkeys(vim.keycode('a<Tab><Esc>'), 'x', false)
  local fallback_line = vim.api.nvim_buf_get_lines(bufnr, blank_row - 1, blank_row, false)[1]
  check(fallback_line:find('ORIG', 1, true), 'the accept key did not fall back to the previous <Tab> mapping: ' .. fallback_line)
  vim.cmd('silent normal! u')
  check(vim.deep_equal(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), original), 'undo did not restore the buffer')
  mark('fallback')

  -- 3. Ghost text in Insert mode, accepted with the plugin's <Tab> (one feedkeys: see lsp_session.lua).
  local ghost_ns = vim.api.nvim_create_namespace('nvim.lsp.inline_completion')
  local chars_before = #text_of(bufnr)
  local insert = {}
  _G.greencoder_wait_ghost = function()
    insert.mode = vim.api.nvim_get_mode().mode
    vim.wait(60000, function()
      local marks = vim.api.nvim_buf_get_extmarks(bufnr, ghost_ns, 0, -1, { details = true })
      if #marks == 0 then
        return false
      end
      local parts = {}
      for _, chunk in ipairs(marks[1][4].virt_text or {}) do
        parts[#parts + 1] = chunk[1]
      end
      for _, virt_line in ipairs(marks[1][4].virt_lines or {}) do
        parts[#parts + 1] = '\n'
        for _, chunk in ipairs(virt_line) do
          parts[#parts + 1] = chunk[1]
        end
      end
      insert.ghost = table.concat(parts)
      return true
    end, 50)
  end
  _G.greencoder_wait_accepted = function()
    insert.accepted = vim.wait(5000, function() return #text_of(bufnr) > chars_before end, 20)
  end
  vim.api.nvim_win_set_cursor(0, { blank_row, #original[blank_row] })
  vim.api.nvim_feedkeys(
    vim.keycode('a<Cmd>lua greencoder_wait_ghost()<CR><Tab><Cmd>lua greencoder_wait_accepted()<CR><Esc>'), 'x', false)
  check(insert.mode and insert.mode:sub(1, 1) == 'i', 'not in Insert mode while waiting: ' .. tostring(insert.mode))
  check(insert.ghost, 'no ghost text (extmarks in nvim.lsp.inline_completion) in Insert mode')
  check(insert.accepted, 'the accept key did not insert the ghost text')
  local accepted_text = text_of(bufnr)
  check(not accepted_text:find('ORIG', 1, true), 'the accept key ran the fallback although ghost text was shown')
  local accepted_chars = #accepted_text - chars_before
  mark('ghost_accepted')
  -- Neovim ran the item's command (greencoder.acceptSuggestion): the server counts the accepted
  -- characters and pushes the ledger.
  local accepted_ledger
  check(vim.wait(10000, function()
    local report = greencoder.last_report(client)
    accepted_ledger = report and (report.charactersAccepted or 0) > 0 and report or nil
    return accepted_ledger ~= nil
  end, 20), 'the pushed ledger did not count the accepted suggestion: ' .. vim.inspect(greencoder.last_report(client)))
  local statusline_accepted = greencoder.statusline()
  vim.cmd('silent normal! u')
  local undone = vim.deep_equal(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), original)
  if not undone then -- the measurement needs the original function
    vim.api.nvim_buf_set_lines(bufnr, 0, -1, false, original)
  end

  -- 3b. A partial accept (<M-Right>, the next word) of a new suggestion (after typing "x": the
  -- suggestion already accepted would come back for the same place and text): the plugin tells the
  -- server (greencoder/didPartiallyAcceptCompletion), whose pushed ledger counts the characters.
  local partial = { before = accepted_ledger.charactersAccepted }
  _G.greencoder_wait_partial = function()
    partial.counted = vim.wait(10000, function()
      local report = greencoder.last_report(client)
      partial.after = report and report.charactersAccepted
      return (partial.after or 0) > partial.before
    end, 20)
  end
  insert.ghost = nil
  vim.api.nvim_win_set_cursor(0, { blank_row, #original[blank_row] })
  vim.api.nvim_feedkeys(vim.keycode(
    'ax<Cmd>lua greencoder_wait_ghost()<CR><M-Right><Cmd>lua greencoder_wait_partial()<CR><Esc>'), 'x', false)
  check(insert.ghost, 'no ghost text after typing "x"')
  check(partial.counted, ('the ledger did not count the partial accept: %s -> %s characters'):format(
    partial.before, tostring(partial.after)))
  -- Bytes the partial accept inserted (beyond the typed "x").
  local partial_inserted = #text_of(bufnr) - #table.concat(original, '\n') - 1
  vim.api.nvim_buf_set_lines(bufnr, 0, -1, false, original)
  mark('partially_accepted')

  -- 4. :GreencoderMeasure with the cursor in the function's body.
  vim.api.nvim_win_set_cursor(0, { function_row + 1, 4 })
  vim.cmd('GreencoderMeasure')
  local started_note
  check(vim.wait(30000, function()
    for _, note in ipairs(notes) do
      if note.message:find('measuring ' .. function_name .. '(', 1, true) then
        started_note = note.message
        return true
      end
    end
  end, 50), 'no "measuring" notification after :GreencoderMeasure: ' .. vim.inspect(notes))
  local format = require('greencoder.format')
  local diagnostic, data
  vim.wait(150000, function()
    diagnostic, data = measurement_diagnostic(bufnr)
    return diagnostic ~= nil
  end, 50)
  check(diagnostic, 'no measurement diagnostic (data.kind == "greencoder.measurement") arrived')
  -- What the user sees at the end of the line: the virtual text, drawn from the data.
  local virtual_text
  check(vim.wait(5000, function()
    virtual_text = drawn_virtual_text(bufnr, diagnostic)
    return virtual_text ~= nil
  end, 20), 'no virtual text drawn for the measurement')
  local expected_virtual = format.short(format.measurement(data))
  -- The pushed ledger announces the result once and carries the same measurement.
  local result_note
  check(vim.wait(10000, function()
    for _, note in ipairs(notes) do
      if note.message:find('greencoder: ' .. data.call .. ': ', 1, true) then
        result_note = note.message
        return true
      end
    end
  end, 20), 'no notification of the result: ' .. vim.inspect(notes))
  local ledger_after_first
  check(vim.wait(10000, function()
    ledger_after_first = greencoder.last_report(client)
    return ledger_after_first and ledger_after_first.measurements == 1
  end, 20), 'the pushed ledger did not count the measurement: ' .. vim.inspect(greencoder.last_report(client)))
  mark('measured')

  -- Measure again: the data now compares with the first run (or says why it cannot), and the
  -- virtual text says so.
  vim.cmd('GreencoderMeasure')
  local again, again_data, again_virtual
  vim.wait(150000, function()
    again, again_data = measurement_diagnostic(bufnr, data)
    return again ~= nil
  end, 50)
  check(again, 'no diagnostic from the second measurement')
  check(vim.wait(5000, function()
    again_virtual = drawn_virtual_text(bufnr, again)
    return again_virtual ~= nil and again_virtual ~= virtual_text
  end, 20), 'no virtual text drawn for the second measurement')
  local expected_again = format.short(format.measurement(again_data))
  mark('measured_again')

  -- 5. :GreencoderReport: a floating window with readable lines.
  vim.cmd('GreencoderReport')
  local report_text
  check(vim.wait(10000, function()
    report_text = floating_text()
    return report_text ~= nil
  end, 50), 'no floating window after :GreencoderReport')
  check(report_text:find(' J', 1, true) or report_text:find('mJ', 1, true), 'the report mentions no joules:\n' .. report_text)
  mark('report')

  -- 6. statusline(): from the ledger the server pushed after the second measurement.
  local statusline
  check(vim.wait(10000, function()
    statusline = greencoder.statusline()
    return statusline:find('2 meas', 1, true) ~= nil
  end, 20), 'statusline() does not show the two measurements: ' .. tostring(statusline))
  local drawn = vim.api.nvim_eval_statusline(vim.o.statusline, { winid = vim.api.nvim_get_current_win() }).str
  mark('statusline')

  -- 7. :GreencoderRestart: a new client, attached, with its model ready.
  vim.cmd('GreencoderRestart')
  local restarted = wait_ready(bufnr, first_id)
  check(vim.lsp.get_client_by_id(first_id) == nil, 'the old client still exists after the restart')
  local inline_params = vim.lsp.util.make_position_params(0, restarted.offset_encoding)
  inline_params.context = { triggerKind = 1 }
  local response = restarted:request_sync('textDocument/inlineCompletion', inline_params, 60000, bufnr)
  local items = response and response.result and (response.result.items or response.result) or {}
  check(#items > 0, 'the restarted server gave no inline completion: ' .. vim.inspect(response))
  check(vim.lsp.inline_completion.is_enabled({ bufnr = bufnr }), 'inline completion is off after the restart')
  mark('restarted')

  -- 8. configure(): a setting changed while the server runs (didChangeConfiguration) takes effect:
  -- the next completion is at most 4 tokens long (the tiny model always writes to the limit).
  local function tokens()
    return (greencoder.last_report(restarted) or {}).completionTokens or 0
  end
  -- The ledger is pushed when a completion has been charged: wait for the push, not a while.
  check(vim.wait(10000, function() return tokens() > 0 end, 20), 'no pushed ledger with the first completion')
  local tokens_before = tokens()
  greencoder.configure({ maxNewTokens = 4 })
  -- Asked somewhere else (the end of the function's first line): at the same place in the same
  -- text the server answers with the suggestion it already made, without generating.
  local configured_params = vim.deepcopy(inline_params)
  configured_params.position = { line = function_row, character = #original[function_row + 1] }
  restarted:request_sync('textDocument/inlineCompletion', configured_params, 60000, bufnr)
  check(vim.wait(10000, function() return tokens() > tokens_before end, 20),
    'no pushed ledger with the completion after configure()')
  local configured_tokens = tokens() - tokens_before
  mark('configured')

  -- 9. :checkhealth greencoder and the help file.
  vim.cmd('checkhealth greencoder')
  local health = text_of(vim.api.nvim_get_current_buf())
  vim.cmd('tabclose')
  local help_file
  if params.helpdoc then
    vim.opt.runtimepath:append(params.helpdoc)
    vim.cmd('helptags ' .. vim.fn.fnameescape(params.helpdoc .. '/doc'))
    vim.cmd('help greencoder-commands')
    help_file = vim.fn.expand('%:t')
    vim.cmd('helpclose')
  end

  return {
    loaded_from = loaded_from,
    client_started_by_plugin = true,
    settings_sent = settings_sent,
    accept_map_desc = accept_map.desc,
    fallback_line = fallback_line,
    ghost_text = insert.ghost,
    accepted_chars = accepted_chars,
    ledger_accepted = {
      suggestionsShown = accepted_ledger.suggestionsShown,
      suggestionsAccepted = accepted_ledger.suggestionsAccepted,
      charactersAccepted = accepted_ledger.charactersAccepted,
      joulesPerAcceptedCharacter = accepted_ledger.joulesPerAcceptedCharacter,
      power = accepted_ledger.power,
    },
    statusline_accepted = statusline_accepted,
    partial_accept = { before = partial.before, after = partial.after, inserted = partial_inserted },
    undone = undone,
    measure_note = started_note,
    result_note = result_note,
    diagnostic = diagnostic.message,
    diagnostic_data = data,
    diagnostic_line = diagnostic.lnum,
    diagnostic_col = diagnostic.col,
    diagnostic_virtual_text = virtual_text,
    expected_virtual_text = expected_virtual,
    ledger_last_measurement = ledger_after_first.lastMeasurement,
    second_data = again_data,
    second_virtual_text = again_virtual,
    expected_second_virtual_text = expected_again,
    report = report_text,
    statusline = statusline,
    statusline_drawn = drawn,
    restarted = restarted.id ~= first_id,
    first_completion_tokens = tokens_before,
    configured_tokens = configured_tokens,
    health = health,
    help_file = help_file,
    notes = vim.tbl_map(function(note) return note.message end, notes),
    nvim_version = tostring(vim.version()),
    timings = timings,
  }
end

local function finish()
  local ok, result = xpcall(main, function(err)
    if type(err) == 'table' and err.greencoder_failure then
      return err
    end
    return { greencoder_failure = 'error: ' .. debug.traceback(tostring(err), 2) }
  end)
  for _, client in ipairs(vim.lsp.get_clients()) do
    client:stop()
  end
  vim.wait(5000, function() return #vim.lsp.get_clients() == 0 end, 50)
  if ok then
    io.stdout:write(vim.json.encode(result) .. '\n')
    io.stdout:flush()
    os.exit(0)
  end
  io.stderr:write('FAILED: ' .. tostring(result.greencoder_failure) .. '\n')
  io.stderr:write('notes: ' .. vim.inspect(notes) .. '\n')
  io.stderr:flush()
  os.exit(1)
end

-- After startup, as a user's first keystroke would be: packages loaded, FILE opened, FileType fired.
vim.api.nvim_create_autocmd('VimEnter', { once = true, callback = function() vim.schedule(finish) end })
