-- How greencoder's data reads in Neovim: the measurement (a "Measure energy" diagnostic's `data`,
-- the ledger's `lastMeasurement`) and the ledger (`greencoder/energyReport`, `greencoder/ledger`).
--
-- Everything is built from the numbers the server sends (joules and seconds, SI units), never
-- from its English message, so a change of wording on the server changes nothing here. Pure: no
-- editor state, so tests/neovim/plugin_data_spec.lua checks it with sample data.
--
-- Completions generated at a remote endpoint (`greencoder serve --endpoint`) spent their energy on
-- the endpoint's hardware, which nothing here measures: the ledger counts them
-- (`endpointCompletions`), charges them no completion joules, and keeps the server's own work for
-- them (prompts, HTTP) apart (`serverJoules`). They read as such, never as "0 J" or as if the
-- server's share were their cost.

local M = {}

M.MEASUREMENT = 'greencoder.measurement'

local PREFIXES = { { 1e3, 'k' }, { 1, '' }, { 1e-3, 'm' }, { 1e-6, 'µ' }, { 1e-9, 'n' } }

--- `value` with an SI prefix and three significant digits: quantity(0.0123, 'J') == '12.3 mJ'.
---@param value number
---@param unit string
---@return string
function M.quantity(value, unit)
  value = tonumber(value) or 0
  if value == 0 then
    return '0 ' .. unit
  end
  if value ~= value or value == math.huge or value == -math.huge then
    return tostring(value) .. ' ' .. unit
  end
  for _, step in ipairs(PREFIXES) do
    if math.abs(value) >= step[1] or step[1] == 1e-9 then
      return ('%.3g %s%s'):format(value / step[1], step[2], unit)
    end
  end
end

local KIND = { estimated = 'est', measured = 'meas' }

local function number(value)
  return type(value) == 'number' and value == value and value or nil
end

--- The kinds of a by-kind table with a number (estimated, measured, then others sorted).
local function kinds_of(values)
  local kinds = {}
  for _, kind in ipairs({ 'estimated', 'measured' }) do
    if number(values[kind]) then
      kinds[#kinds + 1] = kind
    end
  end
  local others = vim.tbl_keys(values)
  table.sort(others)
  for _, kind in ipairs(others) do
    if not KIND[kind] and number(values[kind]) then
      kinds[#kinds + 1] = kind
    end
  end
  return kinds
end

--- Joules by kind, never added together (an estimate is not a measurement):
--- "1.2 J estimated + 3 mJ measured", or with `short` "1.2 J est + 3 mJ meas".
---@param values table<string, number>?
---@param short boolean?
---@return string
function M.by_kind(values, short)
  values = type(values) == 'table' and values or {}
  local parts = {}
  for _, kind in ipairs(kinds_of(values)) do
    parts[#parts + 1] = M.quantity(values[kind], 'J') .. ' ' .. (short and KIND[kind] or kind)
  end
  return #parts > 0 and table.concat(parts, ' + ') or M.quantity(0, 'J')
end

--- Joules per accepted character by kind: "11.6 mJ/char estimated", with `short` "11.6 mJ/char est";
--- nil while no character was accepted (the server sends null for every kind then).
---@param values table<string, number?>?
---@param short boolean?
---@return string?
function M.per_char(values, short)
  values = type(values) == 'table' and values or {}
  local parts = {}
  for _, kind in ipairs(kinds_of(values)) do
    parts[#parts + 1] = M.quantity(values[kind], 'J') .. '/char ' .. (short and KIND[kind] or kind)
  end
  return #parts > 0 and table.concat(parts, ' + ') or nil
end

local SOURCE = { ac = 'on AC power', battery = 'on battery', unknown = 'power source unknown' }

--- The ledger's power policy, cleaned (nil when absent: an older server).
---@return {source: string, on_battery: string, in_force: string}?
function M.power(value)
  if type(value) ~= 'table' or type(value.inForce) ~= 'string' then
    return nil
  end
  return {
    source = type(value.source) == 'string' and value.source or 'unknown',
    on_battery = type(value.onBattery) == 'string' and value.onBattery or 'unknown',
    in_force = value.inForce,
  }
end

--- "on battery; onBattery = reduce; in force: reduce".
function M.power_line(power)
  return ('%s; onBattery = %s; in force: %s'):format(SOURCE[power.source] or power.source, power.on_battery,
    power.in_force)
end


local function spread(value)
  if type(value) ~= 'table' or not number(value.mean) then
    return nil
  end
  return { mean = value.mean, sd = number(value.sd) or 0, cv = number(value.cv) }
end

--- The server's measurement object, cleaned (nil when `value` is not one: another diagnostic).
--- "ok" without numbers counts as failed; only an explicit `significant == true` is significant.
---@param value any
---@return table?
function M.measurement(value)
  if type(value) ~= 'table' or value.kind ~= M.MEASUREMENT or type(value['function']) ~= 'string' then
    return nil
  end
  local energy, time = spread(value.energy), spread(value.time)
  local ok = value.status == 'ok' and energy ~= nil and time ~= nil
  local comparison
  if type(value.comparison) == 'table' then
    local c = value.comparison
    comparison = {
      energy_pct = number(c.energyChangePct),
      time_pct = number(c.timeChangePct),
      p = number(c.pValue),
      alpha = number(c.alpha),
      significant = c.significant == true,
      error = type(c.error) == 'string' and c.error or nil,
    }
  end
  return {
    ['function'] = value['function'],
    call = type(value.call) == 'string' and value.call or value['function'],
    ok = ok,
    error = not ok and (type(value.error) == 'string' and value.error or 'the server sent no numbers') or nil,
    kind = type(value.energyKind) == 'string' and value.energyKind or nil,
    meter = type(value.meter) == 'string' and value.meter or nil,
    isolation = type(value.isolation) == 'string' and value.isolation or nil,
    energy = energy,
    time = time,
    runs = number(value.runs),
    removed = number(value.removed),
    repeats = number(value.repeats),
    comparison = comparison,
  }
end

--- "estimated" / "measured (rapl)".
local function kind_label(m)
  if m.kind == 'measured' then
    return m.meter and ('measured (%s)'):format(m.meter) or 'measured'
  end
  return m.kind or 'unknown kind'
end

--- A signed percentage with a real minus sign: "−12.5 %", "+3.1 %".
function M.percent(value)
  if math.abs(value) < 0.05 then
    value = 0
  end
  return ('%s%.1f %%'):format(value < 0 and '−' or '+', math.abs(value))
end

--- A p-value: 0.0001 -> "1e-4", 0.000123 -> "1.2e-4", 0.62 -> "0.62".
function M.p_value(value)
  if value == 0 then
    return '0'
  end
  if value < 0.001 then
    local mantissa, exponent = ('%.1e'):format(value):match('^([%d.]+)e([-+]%d+)$')
    return mantissa:gsub('%.0$', '') .. 'e' .. tostring(tonumber(exponent))
  end
  return ('%.2g'):format(value)
end

--- "−12.5 % energy, significant (p = 1e-4)", "+0.8 % energy, not significant (p = 0.62)",
--- or "not compared (why)".
function M.comparison(c)
  if c.error then
    return ('not compared (%s)'):format(c.error)
  end
  local change = c.energy_pct and (M.percent(c.energy_pct) .. ' energy') or 'change n/a'
  local text = change .. ', ' .. (c.significant and 'significant' or 'not significant')
  if c.p then
    text = text .. (' (p = %s)'):format(M.p_value(c.p))
  end
  return text
end

local function pm(value, unit)
  return ('%s ± %s'):format(M.quantity(value.mean, unit), M.quantity(value.sd, unit))
end

--- Short enough for the end of a line (virtual text): "2.57 mJ ± 7.9 µJ per call (estimated),
--- 189 µs ± 930 ns; −12.5 % energy, significant (p = 1e-4)"; "measuring failed: why".
---@param m table from measurement()
---@param with_time boolean? default true
function M.short(m, with_time)
  if not m.ok then
    return 'measuring failed: ' .. m.error
  end
  local text = ('%s per call (%s)'):format(pm(m.energy, 'J'), m.kind == 'estimated' and 'estimated' or 'measured')
  if with_time ~= false then
    text = text .. ', ' .. pm(m.time, 's')
  end
  if m.comparison then
    text = text .. '; ' .. M.comparison(m.comparison)
  end
  return text
end

--- The measurement as lines (the report's section; `indent` before each).
---@param m table from measurement()
---@return string[]
function M.measurement_lines(m, indent)
  indent = indent or '  '
  if not m.ok then
    return { indent .. 'measuring failed: ' .. m.error }
  end
  local function row(label, text)
    return ('%s%-16s %s'):format(indent, label, text)
  end
  local lines = {
    row('energy per call', ('%s (%s)'):format(pm(m.energy, 'J'), kind_label(m))),
    row('time per call', pm(m.time, 's')),
  }
  if m.runs then
    local runs = ('%d kept'):format(m.runs)
    if m.removed then
      runs = runs .. (' (%d outliers removed)'):format(m.removed)
    end
    if m.repeats then
      runs = runs .. (', %d calls each'):format(m.repeats)
    end
    lines[#lines + 1] = row('runs', runs)
  end
  if m.isolation then
    lines[#lines + 1] = row('sandbox', m.isolation)
  end
  if m.kind == 'estimated' then
    lines[#lines + 1] = row('note', 'estimated = CPU time × watts per core, no hardware energy counter')
  end
  local c = m.comparison
  if c then
    local text = M.comparison(c)
    if not c.error and c.alpha then
      text = text .. (' at α = %s'):format(tostring(c.alpha))
    end
    if not c.error and c.time_pct then
      text = text .. ('; time %s'):format(M.percent(c.time_pct))
    end
    lines[#lines + 1] = row('vs previous', text)
  end
  return lines
end

--- What stands in for an endpoint completion's energy.
M.ENDPOINT_ENERGY = 'energy spent at the endpoint (not measured here)'

--- Completions generated at an endpoint, and those generated here.
---@return integer endpoint, integer local
local function split_completions(report)
  local endpoint = number(report.endpointCompletions) or 0
  return endpoint, math.max(0, (number(report.completions) or 0) - endpoint)
end

--- The completions' energy: joules for local ones, the endpoint note for endpoint ones.
local function completion_energy(report)
  local endpoint, here = split_completions(report)
  if endpoint == 0 then
    return M.by_kind(report.completionJoules)
  end
  local text = ('%s for %d endpoint completion%s'):format(M.ENDPOINT_ENERGY, endpoint, endpoint == 1 and '' or 's')
  if here == 0 then
    return text
  end
  return ('%s for %d local completion%s; %s'):format(M.by_kind(report.completionJoules), here, here == 1 and '' or 's', text)
end

--- J per accepted character: n/a when every completion came from an endpoint, "(local only)" when some did.
local function per_char_text(report)
  local endpoint, here = split_completions(report)
  if endpoint > 0 and here == 0 then
    return 'n/a: ' .. M.ENDPOINT_ENERGY
  end
  local text = M.per_char(report.joulesPerAcceptedCharacter)
  if not text then
    return 'n/a (no character accepted yet)'
  end
  return endpoint > 0 and text .. ' (local completions only)' or text
end

--- The ledger as readable lines (what :GreencoderReport shows).
---@param report table the server's ledger
---@return string[]
function M.report(report)
  local lines = { 'greencoder energy report', '' }
  local function add(label, text)
    lines[#lines + 1] = ('%-22s %s'):format(label, text)
  end
  add('Model:', tostring(report.model or '?'))
  local cpu = number(report.completionCpuSeconds)
  add('Completions:', ('%d (%d cancelled), %d tokens, %s%s'):format(number(report.completions) or 0,
    number(report.cancelled) or 0, number(report.completionTokens) or 0, M.quantity(number(report.completionSeconds) or 0, 's'),
    cpu and (', %s CPU'):format(M.quantity(cpu, 's')) or ''))
  add('Energy of completions:', completion_energy(report))
  if split_completions(report) > 0 then
    add("Server's own energy:", M.by_kind(report.serverJoules) .. ' (building prompts, HTTP; not the generation)')
    if type(report.endpointEnergy) == 'string' then
      add('Endpoint:', report.endpointEnergy)
    end
  end
  add('Suggestions:', ('%d shown, %d accepted, %d characters accepted'):format(number(report.suggestionsShown) or 0,
    number(report.suggestionsAccepted) or 0, number(report.charactersAccepted) or 0))
  add('Per accepted char:', per_char_text(report))
  add('Prompt tokens:', ('%d read, %d reused from the cache'):format(number(report.prefillTokens) or 0,
    number(report.prefillTokensSaved) or 0))
  add('Typed-ahead answers:', ('%d (no generation)'):format(number(report.typedAhead) or 0))
  local power = M.power(report.power)
  if power then
    add('Power:', M.power_line(power))
  end
  add('Measurements:', tostring(number(report.measurements) or 0))
  add('Energy of benchmarks:', M.by_kind(report.measuredJoules) .. ' (all runs of all measurements)')
  local last = M.measurement(report.lastMeasurement)
  if last then
    add('Last measurement:', last.call)
    vim.list_extend(lines, M.measurement_lines(last))
  else
    add('Last measurement:', 'none yet (:GreencoderMeasure in a function with a "greencoder: bench" call)')
  end
  return lines
end

--- The statusline's text for a ledger: "⚡ 12.3 J est · 5 compl · 1 meas"; once a character was
--- accepted "⚡ 12.3 J est · 11.6 mJ/char est · 5 compl", and with a power policy that holds
--- generation back "… · 🔋 reduce". Completions from an endpoint: "⚡ energy spent at the endpoint
--- (not measured here) · server 12.3 mJ est · 3 compl", with no J/char.
---@param report table? the server's ledger (nil: none yet)
---@param icon string
function M.statusline(report, icon)
  if type(report) ~= 'table' then
    return icon .. ' starting'
  elseif report.model == 'loading' or report.model == 'idle' then
    return icon .. ' loading model'
  elseif report.model == 'failed' then
    return icon .. ' model failed'
  end
  local endpoint, here = split_completions(report)
  local parts = {}
  if endpoint == 0 then
    parts = { icon .. ' ' .. M.by_kind(report.completionJoules, true), M.per_char(report.joulesPerAcceptedCharacter, true) }
  else
    if here > 0 then
      parts[1] = M.by_kind(report.completionJoules, true) .. ' local'
    end
    parts[#parts + 1] = M.ENDPOINT_ENERGY
    parts[#parts + 1] = 'server ' .. M.by_kind(report.serverJoules, true)
    local per_char = here > 0 and M.per_char(report.joulesPerAcceptedCharacter, true)
    if per_char then
      parts[#parts + 1] = per_char .. ' (local only)'
    end
    parts[1] = icon .. ' ' .. parts[1]
  end
  parts[#parts + 1] = ('%d compl'):format(number(report.completions) or 0)
  if (number(report.measurements) or 0) > 0 then
    parts[#parts + 1] = ('%d meas'):format(report.measurements)
  end
  local power = M.power(report.power)
  if power and power.in_force ~= 'full' then
    parts[#parts + 1] = '🔋 ' .. power.in_force
  end
  return table.concat(parts, ' · ')
end

return M
