-- Partial accepts of greencoder's ghost text: the next word or the next line of the suggestion on
-- screen is inserted, and the server is told how much of the suggestion is now accepted
-- (notification `greencoder/didPartiallyAcceptCompletion` {suggestionId, acceptedLength}), the way
-- Copilot's server is told, so its ledger counts accepted characters (and joules per accepted
-- character) for partial accepts too. A whole accept (the accept key) needs nothing from here:
-- Neovim runs the item's `command` (greencoder.acceptSuggestion) after inserting it.
--
-- `acceptedLength` counts characters (Unicode code points, as the server counts them) from the
-- suggestion's start. After the user typed along a suggestion, or accepted part of it, the server
-- answers with the rest of the same suggestion (same id, shorter text), so where the item on screen
-- starts inside its suggestion is the suggestion's full length minus the item's: `remember()` sees
-- every inline completion answer (see init.lua) and keeps each suggestion's full length.

local M = {}

M.NOTIFICATION = 'greencoder/didPartiallyAcceptCompletion'
M.ACCEPT_COMMAND = 'greencoder.acceptSuggestion'

local MAX_REMEMBERED = 256
local full_length = {} ---@type table<string, integer> suggestion id -> characters of its first (full) text
local order = {} ---@type string[] ids, oldest first

--- Characters (code points) of `text`.
local function chars(text)
  return vim.fn.strchars(text)
end

--- The suggestion id carried by an item's accept command, or nil (not greencoder's).
---@param command table?
---@return string?
function M.suggestion_id(command)
  if type(command) == 'table' and command.command == M.ACCEPT_COMMAND and type(command.arguments) == 'table'
    and type(command.arguments[1]) == 'string' then
    return command.arguments[1]
  end
end

--- Note the items of an inline completion answer: the first text seen for an id is its whole
--- suggestion (later answers for the same id are its rest).
---@param items table[]?
function M.remember(items)
  for _, item in ipairs(type(items) == 'table' and items or {}) do
    local id = type(item) == 'table' and M.suggestion_id(item.command)
    local text = id and item.insertText
    if type(text) == 'string' then
      if not full_length[id] then
        order[#order + 1] = id
        if #order > MAX_REMEMBERED then
          full_length[table.remove(order, 1)] = nil
        end
      end
      full_length[id] = math.max(full_length[id] or 0, chars(text))
    end
  end
end

--- Forget every suggestion (a restarted server starts new ids).
function M.forget()
  full_length, order = {}, {}
end

--- The next word of `text`: leading blanks and a run of word characters, or of other non-blank
--- characters; at a line break, the break and the next line's indentation.
---@param text string
---@return string
function M.next_word(text)
  -- Bytes >= 0x80 count as word characters: UTF-8 letters stay inside their word.
  return text:match('^[ \t]*[%w_\128-\255]+') or text:match('^[ \t]*[^%w_%s\128-\255]+')
    or text:match('^[ \t]*\r?\n[ \t]*') or text:match('^%s+') or ''
end

--- The rest of the current line of `text` (without its line break); at a line break, the break and
--- the whole next line.
---@param text string
---@return string
function M.next_line(text)
  local rest = text:match('^[^\n]+')
  if rest then
    return rest
  end
  return text:match('^\n[^\n]*') or ''
end

--- Where `item` starts inside its suggestion, in characters (0 when not known).
local function start_in_suggestion(id, text)
  local full = id and full_length[id]
  local offset = full and full - chars(text) or 0
  return offset > 0 and offset or 0
end

--- Insert the next `kind` ('word' or 'line') of the accepted inline completion `item` at the cursor
--- and tell the server. Returns the text inserted ('' when there was nothing to insert).
---@param bufnr integer
---@param item vim.lsp.inline_completion.Item
---@param kind 'word'|'line'
---@return string
function M.insert(bufnr, item, kind)
  local text = item.insert_text
  if type(text) ~= 'string' then
    return '' -- a snippet: only a whole accept makes sense
  end
  local winid = vim.fn.bufwinid(bufnr)
  local cursor = vim.api.nvim_win_get_cursor(winid)
  local row, col = cursor[1] - 1, cursor[2]
  -- What the user typed since the item was asked for (Neovim hides it from the ghost text).
  local typed = ''
  local start = item.range and item.range.start
  if start and start.row == row and start.col <= col then
    typed = vim.api.nvim_buf_get_text(bufnr, row, start.col, row, col, {})[1] or ''
    if text:sub(1, #typed) ~= typed then
      return '' -- the buffer no longer matches the suggestion
    end
  end
  local rest = text:sub(#typed + 1)
  local part = kind == 'line' and M.next_line(rest) or M.next_word(rest)
  if part == '' then
    return ''
  end
  local lines = vim.split(part, '\n', { plain = true })
  vim.api.nvim_buf_set_text(bufnr, row, col, row, col, lines)
  vim.api.nvim_win_set_cursor(winid, { row + #lines, (#lines == 1 and col or 0) + #lines[#lines] })

  local id = M.suggestion_id(item.command)
  local client = id and vim.lsp.get_client_by_id(item.client_id)
  if client and not client:is_stopped() then
    local accepted = start_in_suggestion(id, text) + chars(typed) + chars(part)
    client:notify(M.NOTIFICATION, { suggestionId = id, acceptedLength = accepted })
  end
  return part
end

--- Accept the next `kind` of the ghost text in `bufnr` (default: current). False when there is no
--- ghost text (the caller falls back to the key's earlier meaning).
---@param kind 'word'|'line'
---@param bufnr integer?
---@return boolean
function M.accept(kind, bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  return vim.lsp.inline_completion.get({
    bufnr = bufnr,
    on_accept = function(item)
      M.insert(bufnr, item, kind)
    end,
  })
end

return M
