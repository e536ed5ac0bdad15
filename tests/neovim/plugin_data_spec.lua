-- The Neovim plugin's rendering from greencoder's data, against an in-process fake server (no
-- model, no Python): fast and exact where the real-server session can only check shapes.
--
--   nvim --headless --clean -l tests/neovim/plugin_data_spec.lua PLUGIN_DIR FILE
--
-- PLUGIN_DIR: editors/neovim; FILE: a Python file to attach to. The fake server (a `cmd`
-- function, see |vim.lsp.ClientConfig|) answers initialize and `greencoder/energyReport`, and the
-- cases make it push `greencoder/ledger` and publish "Measure energy" diagnostics whose `data`
-- follows the server contract, with a `message` that says something else on purpose (the plugin
-- must render from `data`). Prints one JSON line {"passed": [...], "failed": [{name, error}]};
-- exits 0 when it ran (the caller checks the lists), 1 when it could not, 3 on timeout.

local uv = vim.uv or vim.loop
local guard = uv.new_timer()
guard:start(60000, 0, function()
  io.stderr:write('timeout\n')
  os.exit(3)
end)

local plugin, file = _G.arg[1], _G.arg[2]
vim.opt.runtimepath:prepend(plugin)
vim.o.swapfile = false
vim.o.showmode = false -- headless: "-- INSERT --" would land on stdout

local notes = {}
vim.notify = function(message, level)
  notes[#notes + 1] = { message = tostring(message), level = level }
end

-- ------------------------------------------------------------------------------ contract samples

local MEASURED = {
  kind = 'greencoder.measurement', ['function'] = 'count_primes', call = 'count_primes(5000)',
  uri = vim.uri_from_fname(file), status = 'ok', error = vim.NIL, energyKind = 'measured', meter = 'rapl',
  isolation = 'bubblewrap + cgroup v2', energy = { mean = 0.00257, sd = 7.9e-6, cv = 0.003 },
  time = { mean = 0.000189, sd = 9.3e-7, cv = 0.005 }, runs = 10, removed = 0, repeats = 26000, comparison = vim.NIL,
}
local ESTIMATED = vim.tbl_extend('force', MEASURED, { energyKind = 'estimated', meter = 'estimate' })
local SIGNIFICANT = vim.tbl_extend('force', ESTIMATED, { comparison = {
  energyChangePct = -12.5, timeChangePct = -11.0, pValue = 0.0001, alpha = 0.005, significant = true, error = vim.NIL } })
local NOT_SIGNIFICANT = vim.tbl_extend('force', ESTIMATED, { comparison = {
  energyChangePct = 0.8, timeChangePct = 1.1, pValue = 0.62, alpha = 0.005, significant = false, error = vim.NIL } })
local NOT_COMPARED = vim.tbl_extend('force', ESTIMATED, { comparison = {
  energyChangePct = vim.NIL, timeChangePct = vim.NIL, pValue = vim.NIL, alpha = 0.005, significant = false,
  error = 'too few runs to compare (2 < 3)' } })
local FAILED = {
  kind = 'greencoder.measurement', ['function'] = 'count_primes', call = 'count_primes(5000)', uri = MEASURED.uri,
  status = 'failed', error = "NameError: name 'is_prime' is not defined", energyKind = vim.NIL, meter = vim.NIL,
  isolation = vim.NIL, energy = vim.NIL, time = vim.NIL, runs = vim.NIL, removed = vim.NIL, repeats = vim.NIL,
  comparison = vim.NIL,
}
local function ledger(overrides)
  return vim.tbl_extend('force', {
    model = 'ready', completions = 3, cancelled = 1, completionTokens = 48, completionSeconds = 1.2,
    completionJoules = { measured = 0.0, estimated = 1.39 }, measurements = 1, measuredJoules = { estimated = 26.1 },
    lastMeasurement = ESTIMATED, completionCpuSeconds = 2.5, prefillTokens = 1200, prefillTokensSaved = 3400,
    typedAhead = 7, suggestionsShown = 3, suggestionsAccepted = 0, charactersAccepted = 0,
    -- Nothing accepted yet: null per kind (vim.NIL here; the LSP client's decoding drops it).
    joulesPerAcceptedCharacter = { measured = vim.NIL, estimated = vim.NIL },
    power = { source = 'ac', onBattery = 'reduce', inForce = 'full' },
  }, overrides or {})
end
-- 120 characters accepted from 2 suggestions; on battery, reducing.
local ACCEPTED = {
  completionJoules = { estimated = 1.39 }, suggestionsAccepted = 2, charactersAccepted = 120,
  joulesPerAcceptedCharacter = { estimated = 1.39 / 120 }, power = { source = 'battery', onBattery = 'reduce', inForce = 'reduce' },
}
local ACCEPTED_MEASURED = {
  completionJoules = { measured = 0.9 }, suggestionsAccepted = 2, charactersAccepted = 120,
  joulesPerAcceptedCharacter = { measured = 0.9 / 120 }, power = { source = 'battery', onBattery = 'explicit', inForce = 'explicit' },
}
-- `serve --endpoint`: 3 completions generated at a remote endpoint, 120 characters accepted; no
-- completion joules (spent at the endpoint), this server's own CPU energy apart.
local ENDPOINT = {
  completionJoules = vim.empty_dict(), joulesPerAcceptedCharacter = vim.empty_dict(), suggestionsAccepted = 2,
  charactersAccepted = 120, endpointCompletions = 3, serverJoules = { estimated = 0.0123 },
  endpointEnergy = '3 completions were generated at http://gpu-box:8000/v1: their energy was spent there and is not measured here',
  measurements = 0, measuredJoules = vim.empty_dict(), lastMeasurement = vim.NIL,
}
local FRESH = ledger({ model = 'loading', completions = 0, cancelled = 0, completionTokens = 0, completionSeconds = 0,
  completionJoules = vim.empty_dict(), measurements = 0, measuredJoules = vim.empty_dict(), lastMeasurement = vim.NIL })
-- What the server writes for editors that ignore `data`: never shown by the plugin.
local PROSE = 'count_primes: 1 J ± 1 J per call, significant'

-- ---------------------------------------------------------------------------------- fake server

-- The suggestion the fake offers as ghost text (once a case sets it): like the real server, it
-- answers the rest of the same suggestion (same id) while the buffer holds a start of it at the
-- anchor (where it was first asked for).
local SUGGESTION = { id = 'sug1', text = 'total = count_primes(n)\n    return total' }
local server = { dispatchers = nil, report = FRESH, report_requests = 0, suggestion = nil, anchor = nil,
  notifications = {}, commands = {} }

local function inline_answer(params)
  local s = server.suggestion
  if not s then
    return { items = {} }
  end
  local row, col = params.position.line, params.position.character
  server.anchor = server.anchor or { row, col }
  local typed = table.concat(vim.api.nvim_buf_get_text(0, server.anchor[1], server.anchor[2], row, col, {}), '\n')
  if #typed >= #s.text or s.text:sub(1, #typed) ~= typed then
    return { items = {} }
  end
  return { items = { {
    insertText = s.text:sub(#typed + 1),
    range = { start = params.position, ['end'] = params.position },
    command = { title = 'greencoder: suggestion accepted', command = 'greencoder.acceptSuggestion', arguments = { s.id } },
  } } }
end

local function fake_server(dispatchers)
  server.dispatchers = dispatchers
  local closing = false
  local next_id = 0
  return {
    request = function(method, params, callback)
      next_id = next_id + 1
      local result
      if method == 'initialize' then
        result = { capabilities = { textDocumentSync = 1, inlineCompletionProvider = true,
          executeCommandProvider = { commands = { 'greencoder.acceptSuggestion', 'greencoder.measureEnergy' } } },
          serverInfo = { name = 'fake greencoder' } }
      elseif method == 'textDocument/inlineCompletion' then
        result = inline_answer(params)
      elseif method == 'workspace/executeCommand' then
        server.commands[#server.commands + 1] = params
        result = true
      elseif method == 'greencoder/energyReport' then
        server.report_requests = server.report_requests + 1
        result = server.report
      elseif method == 'shutdown' then
        result = vim.NIL
      end
      vim.schedule(function() callback(nil, result) end)
      return true, next_id
    end,
    notify = function(method, params)
      server.notifications[#server.notifications + 1] = { method = method, params = params }
      if method == 'exit' then
        closing = true
      end
      return true
    end,
    is_closing = function() return closing end,
    terminate = function() closing = true end,
  }
end

local function push(method, params)
  server.dispatchers.notification(method, params)
end

-- ----------------------------------------------------------------------------------------- cases

local passed, failed = {}, {}
local function case(name, body)
  local ok, err = pcall(body)
  if ok then
    passed[#passed + 1] = name
  else
    failed[#failed + 1] = { name = name, error = tostring(err) }
  end
end

local function eq(actual, expected, what)
  if actual ~= expected then
    error(('%s: expected %s, got %s'):format(what or 'value', vim.inspect(expected), vim.inspect(actual)), 2)
  end
end

local function truthy(value, what)
  if not value then
    error(what, 2)
  end
  return value
end

local function run()
  local greencoder = require('greencoder')
  local format = require('greencoder.format')
  greencoder.setup({ cmd = fake_server, filetypes = { 'python' } })
  vim.cmd.edit(vim.fn.fnameescape(file))
  local bufnr = vim.api.nvim_get_current_buf()
  local client
  truthy(vim.wait(10000, function()
    client = greencoder.client(bufnr)
    return client ~= nil and client.initialized and server.dispatchers ~= nil
  end, 10), 'the plugin started no client with the fake server')
  -- The one request at attach: its answer (the fresh ledger) reaches the statusline.
  truthy(vim.wait(5000, function() return greencoder.last_report(client) ~= nil end, 10), 'no ledger after attach')

  case('asks for the ledger once when the client attaches', function()
    eq(server.report_requests, 1, 'energyReport requests')
    eq(greencoder.statusline(), '⚡ loading model', 'statusline')
  end)

  case('the pushed ledger updates the statusline, with no request and no timer', function()
    local timers = 0
    local new_timer, defer_fn = uv.new_timer, vim.defer_fn
    uv.new_timer = function(...) timers = timers + 1 return new_timer(...) end
    vim.defer_fn = function(...) timers = timers + 1 return defer_fn(...) end
    local ok, err = pcall(function()
      push('greencoder/ledger', ledger({ lastMeasurement = vim.NIL, measurements = 0 }))
      eq(greencoder.statusline(), '⚡ 1.39 J est + 0 J meas · 3 compl', 'statusline after the first push')
      push('greencoder/ledger', ledger({ completions = 4, measurements = 2 }))
      eq(greencoder.statusline(), '⚡ 1.39 J est + 0 J meas · 4 compl · 2 meas', 'statusline after the second push')
      local drawn = vim.api.nvim_eval_statusline(vim.o.statusline, {}).str
      truthy(drawn:find('4 compl · 2 meas', 1, true), 'not in the drawn statusline: ' .. drawn)
    end)
    uv.new_timer, vim.defer_fn = new_timer, defer_fn
    truthy(ok, err)
    eq(timers, 0, 'timers started')
    eq(server.report_requests, 1, 'energyReport requests')
  end)

  case('a new measurement in the ledger is announced once, from its numbers', function()
    local before = #notes
    push('greencoder/ledger', ledger({ lastMeasurement = SIGNIFICANT, measurements = 3 }))
    push('greencoder/ledger', ledger({ lastMeasurement = SIGNIFICANT, measurements = 3, completions = 5 }))
    eq(#notes - before, 1, 'notifications')
    eq(notes[#notes].message,
      'greencoder: count_primes(5000): 2.57 mJ ± 7.9 µJ per call (estimated); −12.5 % energy, significant (p = 1e-4)',
      'notification')
  end)

  local function virtual_text_for(data)
    push('textDocument/publishDiagnostics', { uri = vim.uri_from_bufnr(bufnr), diagnostics = {
      { range = { start = { line = 4, character = 4 }, ['end'] = { line = 4, character = 16 } }, severity = 3,
        source = 'greencoder', message = PROSE, data = data } } })
    local text
    truthy(vim.wait(2000, function()
      local diagnostic = vim.diagnostic.get(bufnr)[1]
      if not diagnostic then
        return false
      end
      local ns = vim.diagnostic.get_namespace(diagnostic.namespace).user_data.virt_text_ns
      for _, mark in ipairs(ns and vim.api.nvim_buf_get_extmarks(bufnr, ns, 0, -1, { details = true }) or {}) do
        text = table.concat(vim.tbl_map(function(chunk) return chunk[1] end, mark[4].virt_text or {}))
        return true
      end
    end, 10), 'no virtual text drawn')
    return text:gsub('^[^%w]*', '') -- the sign Neovim puts before it
  end

  case('virtual text: an estimate is labelled estimated', function()
    eq(virtual_text_for(ESTIMATED), '2.57 mJ ± 7.9 µJ per call (estimated), 189 µs ± 930 ns', 'virtual text')
  end)

  case('virtual text: a measured value is labelled measured', function()
    eq(virtual_text_for(MEASURED), '2.57 mJ ± 7.9 µJ per call (measured), 189 µs ± 930 ns', 'virtual text')
  end)

  case('virtual text: a significant change says significant', function()
    eq(virtual_text_for(SIGNIFICANT),
      '2.57 mJ ± 7.9 µJ per call (estimated), 189 µs ± 930 ns; −12.5 % energy, significant (p = 1e-4)', 'virtual text')
  end)

  case('virtual text: a change that is not significant never reads as significant', function()
    local text = virtual_text_for(NOT_SIGNIFICANT)
    eq(text, '2.57 mJ ± 7.9 µJ per call (estimated), 189 µs ± 930 ns; +0.8 % energy, not significant (p = 0.62)',
      'virtual text')
    truthy(not text:find(', significant', 1, true), 'rendered as significant: ' .. text)
  end)

  case('virtual text: an odd `significant` is not significant', function()
    local odd = vim.tbl_extend('force', SIGNIFICANT, { comparison = vim.tbl_extend('force', SIGNIFICANT.comparison,
      { significant = 'yes' }) })
    truthy(virtual_text_for(odd):find('not significant', 1, true), 'a non-boolean counted as significant')
  end)

  case('virtual text: no comparison says why', function()
    eq(virtual_text_for(NOT_COMPARED),
      '2.57 mJ ± 7.9 µJ per call (estimated), 189 µs ± 930 ns; not compared (too few runs to compare (2 < 3))',
      'virtual text')
  end)

  case('virtual text: a failed measurement gives its reason', function()
    eq(virtual_text_for(FAILED), "measuring failed: NameError: name 'is_prime' is not defined", 'virtual text')
  end)

  case('virtual text: a diagnostic without measurement data keeps its message', function()
    eq(virtual_text_for(nil), PROSE, 'virtual text')
  end)

  case('the report is built from the numbers', function()
    local lines = format.report(ledger({ lastMeasurement = SIGNIFICANT }))
    eq(table.concat(lines, '\n'), table.concat({
      'greencoder energy report',
      '',
      'Model:                 ready',
      'Completions:           3 (1 cancelled), 48 tokens, 1.2 s, 2.5 s CPU',
      'Energy of completions: 1.39 J estimated + 0 J measured',
      'Suggestions:           3 shown, 0 accepted, 0 characters accepted',
      'Per accepted char:     n/a (no character accepted yet)',
      'Prompt tokens:         1200 read, 3400 reused from the cache',
      'Typed-ahead answers:   7 (no generation)',
      'Power:                 on AC power; onBattery = reduce; in force: full',
      'Measurements:          1',
      'Energy of benchmarks:  26.1 J estimated (all runs of all measurements)',
      'Last measurement:      count_primes(5000)',
      '  energy per call  2.57 mJ ± 7.9 µJ (estimated)',
      '  time per call    189 µs ± 930 ns',
      '  runs             10 kept (0 outliers removed), 26000 calls each',
      '  sandbox          bubblewrap + cgroup v2',
      '  note             estimated = CPU time × watts per core, no hardware energy counter',
      '  vs previous      −12.5 % energy, significant (p = 1e-4) at α = 0.005; time −11.0 %',
    }, '\n'), 'report')
    local measured = table.concat(format.report(ledger({ lastMeasurement = MEASURED })), '\n')
    truthy(measured:find('(measured (rapl))', 1, true) and not measured:find('estimated =', 1, true), measured)
    local failed_report = table.concat(format.report(ledger({ lastMeasurement = FAILED })), '\n')
    truthy(failed_report:find("\n  measuring failed: NameError: name 'is_prime' is not defined", 1, true), failed_report)
    local none = table.concat(format.report(FRESH), '\n')
    truthy(none:find('Last measurement:      none yet', 1, true), none)
    local accepted = format.report(ledger(ACCEPTED))
    eq(table.concat(vim.list_slice(accepted, 5, 11), '\n'), table.concat({
      'Energy of completions: 1.39 J estimated',
      'Suggestions:           3 shown, 2 accepted, 120 characters accepted',
      'Per accepted char:     11.6 mJ/char estimated',
      'Prompt tokens:         1200 read, 3400 reused from the cache',
      'Typed-ahead answers:   7 (no generation)',
      'Power:                 on battery; onBattery = reduce; in force: reduce',
      'Measurements:          1',
    }, '\n'), 'report after accepts')
    local old = table.concat(format.report({ model = 'ready', completions = 1 }), '\n')
    truthy(not old:find('Power:', 1, true) and old:find('Per accepted char:     n/a', 1, true), old)
  end)

  case('statusline: J per accepted character once accepted (est when estimated), and a policy that is not full',
    function()
    local plain = { lastMeasurement = vim.NIL, measurements = 0 }
    eq(format.statusline(ledger(plain), '⚡'), '⚡ 1.39 J est + 0 J meas · 3 compl', 'nothing accepted')
    eq(format.statusline(ledger(vim.tbl_extend('force', plain, ACCEPTED)), '⚡'),
      '⚡ 1.39 J est · 11.6 mJ/char est · 3 compl · 🔋 reduce', 'estimated, reducing')
    eq(format.statusline(ledger(vim.tbl_extend('force', plain, ACCEPTED_MEASURED)), '⚡'),
      '⚡ 900 mJ meas · 7.5 mJ/char meas · 3 compl · 🔋 explicit', 'measured, explicit only')
    eq(format.statusline(ledger(vim.tbl_extend('force', plain, ACCEPTED,
      { power = { source = 'battery', onBattery = 'keep', inForce = 'full' } })), '⚡'),
      '⚡ 1.39 J est · 11.6 mJ/char est · 3 compl', 'on battery, keep going')
    push('greencoder/ledger', ledger(vim.tbl_extend('force', ACCEPTED, { measurements = 2 })))
    eq(greencoder.statusline(), '⚡ 1.39 J est · 11.6 mJ/char est · 3 compl · 2 meas · 🔋 reduce', 'pushed')
  end)

  case('endpoint completions: energy spent at the endpoint, not measured here; the server\'s own energy apart; no J/char',
    function()
    eq(format.statusline(ledger(ENDPOINT), '⚡'),
      '⚡ energy spent at the endpoint (not measured here) · server 12.3 mJ est · 3 compl', 'statusline')
    eq(format.statusline(ledger(vim.tbl_extend('force', ENDPOINT, { serverJoules = { measured = 0.5 } })), '⚡'),
      '⚡ energy spent at the endpoint (not measured here) · server 500 mJ meas · 3 compl', 'measured server energy')
    -- Even if a server sent J/char for endpoint completions, it is not shown: the generation is not in it.
    local odd = ledger(vim.tbl_extend('force', ENDPOINT, { joulesPerAcceptedCharacter = { estimated = 0.0001 } }))
    truthy(not format.statusline(odd, '⚡'):find('/char', 1, true), format.statusline(odd, '⚡'))
    truthy(not table.concat(format.report(odd), '\n'):find('/char', 1, true), table.concat(format.report(odd), '\n'))
    eq(table.concat(vim.list_slice(format.report(ledger(ENDPOINT)), 5, 9), '\n'), table.concat({
      'Energy of completions: energy spent at the endpoint (not measured here) for 3 endpoint completions',
      "Server's own energy:   12.3 mJ estimated (building prompts, HTTP; not the generation)",
      'Endpoint:              3 completions were generated at http://gpu-box:8000/v1: their energy was spent there and is not measured here',
      'Suggestions:           3 shown, 2 accepted, 120 characters accepted',
      'Per accepted char:     n/a: energy spent at the endpoint (not measured here)',
    }, '\n'), 'report')
    -- Local and endpoint completions in one ledger: local joules kept, J/char labelled local only.
    local mixed = ledger(vim.tbl_extend('force', ENDPOINT, { completions = 5, completionJoules = { estimated = 1.39 },
      joulesPerAcceptedCharacter = { estimated = 1.39 / 120 } }))
    eq(format.statusline(mixed, '⚡'), '⚡ 1.39 J est local · energy spent at the endpoint (not measured here) · '
      .. 'server 12.3 mJ est · 11.6 mJ/char est (local only) · 5 compl', 'mixed statusline')
    local mixed_report = table.concat(format.report(mixed), '\n')
    truthy(mixed_report:find('1.39 J estimated for 2 local completions; energy spent at the endpoint', 1, true), mixed_report)
    truthy(mixed_report:find('11.6 mJ/char estimated (local completions only)', 1, true), mixed_report)
    -- A local session with the new keys present reads exactly as before.
    local local_keys = { endpointCompletions = 0, endpointEnergy = vim.NIL, serverJoules = vim.empty_dict() }
    eq(format.statusline(ledger(vim.tbl_extend('force', ACCEPTED, local_keys)), '⚡'),
      format.statusline(ledger(ACCEPTED), '⚡'), 'local statusline unchanged')
    eq(table.concat(format.report(ledger(vim.tbl_extend('force', ACCEPTED, local_keys))), '\n'),
      table.concat(format.report(ledger(ACCEPTED)), '\n'), 'local report unchanged')
    push('greencoder/ledger', ledger(ENDPOINT))
    eq(greencoder.statusline(), '⚡ energy spent at the endpoint (not measured here) · server 12.3 mJ est · 3 compl', 'pushed')
  end)

  case('partial accepts: the next word, the next line', function()
    local partial = require('greencoder.partial')
    eq(partial.next_word('total = 1'), 'total')
    eq(partial.next_word(' = count(n)'), ' =')
    eq(partial.next_word('(n)\n'), '(')
    eq(partial.next_word('\n    return x'), '\n    ')
    eq(partial.next_word('café au lait'), 'café')
    eq(partial.next_word(''), '')
    eq(partial.next_line('a = 1\nb = 2'), 'a = 1')
    eq(partial.next_line('\nb = 2\nc'), '\nb = 2')
    eq(partial.next_line(''), '')
  end)

  case('accept word/line send the partial notification with the length so far; the accept key runs the accept command',
    function()
    local partials = function()
      return vim.tbl_filter(function(n) return n.method == 'greencoder/didPartiallyAcceptCompletion' end,
        server.notifications)
    end
    local ghost_ns = vim.api.nvim_create_namespace('nvim.lsp.inline_completion')
    local row = 9 -- the indentation-only line in count_primes's body
    local line = vim.api.nvim_buf_get_lines(bufnr, row - 1, row, false)[1]
    truthy(line:match('^%s+$'), 'line 9 of the sample is not indentation only: ' .. vim.inspect(line))
    local anchor_col = #line
    local steps = {}
    -- The ghost text on screen, once it is the rest of the suggestion after what the buffer holds.
    _G.spec_wait_ghost = function(name)
      local expected
      steps[name] = vim.wait(5000, function()
        local cursor = vim.api.nvim_win_get_cursor(0)
        local typed = table.concat(vim.api.nvim_buf_get_text(bufnr, row - 1, anchor_col, cursor[1] - 1, cursor[2], {}), '\n')
        expected = SUGGESTION.text:sub(#typed + 1)
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
        return table.concat(parts) == expected
      end, 10) or ('no ghost text ' .. vim.inspect(expected))
    end
    _G.spec_wait_partials = function(name, count)
      steps[name] = vim.wait(5000, function() return #partials() >= count end, 10) or 'no partial notification'
      -- The part is in the buffer and the cursor after it. For a user Neovim now fires CursorMovedI
      -- (and inline_completion asks for the rest of the suggestion), but only once no key is
      -- waiting, and here the next keys are: fire it as Neovim would.
      vim.api.nvim_exec_autocmds('CursorMovedI', { buffer = bufnr })
    end
    _G.spec_wait_command = function(name)
      steps[name] = vim.wait(5000, function() return #server.commands > 0 end, 10) or 'no workspace/executeCommand'
    end
    server.suggestion, server.anchor, server.notifications, server.commands = SUGGESTION, nil, {}, {}
    vim.api.nvim_win_set_cursor(0, { row, 0 })
    vim.api.nvim_feedkeys(vim.keycode(table.concat({
      'A<Cmd>lua spec_wait_ghost("shown")<CR>',
      '<M-Right><Cmd>lua spec_wait_partials("word", 1)<CR><Cmd>lua spec_wait_ghost("rest after the word")<CR>',
      '<M-Down><Cmd>lua spec_wait_partials("line", 2)<CR><Cmd>lua spec_wait_ghost("rest after the line")<CR>',
      '<Tab><Cmd>lua spec_wait_command("accepted")<CR><Esc>',
    })), 'x', false)
    server.suggestion = nil
    for _, name in ipairs({ 'shown', 'word', 'rest after the word', 'line', 'rest after the line', 'accepted' }) do
      eq(steps[name], true, name)
    end
    local sent = vim.tbl_map(function(n) return n.params end, partials())
    eq(vim.json.encode(sent), vim.json.encode({ { suggestionId = 'sug1', acceptedLength = 5 },
      { suggestionId = 'sug1', acceptedLength = 23 } }), 'partial notifications')
    eq(vim.json.encode(server.commands), vim.json.encode({ { command = 'greencoder.acceptSuggestion', arguments = { 'sug1' } } }),
      'commands run on accept')
    eq(table.concat(vim.api.nvim_buf_get_lines(bufnr, row - 1, row + 1, false), '\n'),
      '    total = count_primes(n)\n    return total', 'the buffer after the accepts')
    vim.cmd('silent! undo 0')
  end)

  case('numbers: quantities, percentages, p-values', function()
    eq(format.quantity(0.01234, 'J'), '12.3 mJ')
    eq(format.quantity(1234, 'J'), '1.23 kJ')
    eq(format.quantity(2e-12, 'J'), '0.002 nJ')
    eq(format.quantity(0, 's'), '0 s')
    eq(format.percent(-12.5), '−12.5 %')
    eq(format.percent(3.14), '+3.1 %')
    eq(format.p_value(0.0001), '1e-4')
    eq(format.p_value(0.000123), '1.2e-4')
    eq(format.p_value(0.62), '0.62')
  end)
end

local ok, err = pcall(run)
for _, c in ipairs(vim.lsp.get_clients()) do
  c:stop(true)
end
if not ok then
  io.stderr:write('FAILED: ' .. tostring(err) .. '\n')
  os.exit(1)
end
io.stdout:write(vim.json.encode({ passed = passed, failed = failed }) .. '\n')
io.stdout:flush()
os.exit(0)
