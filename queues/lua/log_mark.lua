--[[
  Read-only: what a watched job's logs look like now, to tell whether they moved: their length and a
  digest of the last line (BullMQ's keepLogs trims old lines, so the length alone can stay the same).
  The last line is read only when the whole list fits the copy bound (includes/bounded_copy.lua);
  a larger list is marked by its exact size in memory instead, which a trimmed and appended line
  changes too (unless both have the same length: then the length of the list is what moved, or the
  next resync shows the line).

    KEYS[1]  the job's logs list
    ARGV[1]  max bytes copied into this script

  Returns { length, the sha1 of the last line or "big:<bytes>" }
]]
local rcall = redis.call

-- @include bounded_copy

local ok, count = pcall(rcall, "LLEN", KEYS[1])
if not ok or count == 0 then
  return {0, ""}
end
if not wholeKeyFits(KEYS[1], tonumber(ARGV[1])) then
  -- Without MEMORY (an ACL that denies it) only the length can tell that the logs moved.
  local bytes = keyBytes(KEYS[1])
  return {count, bytes and ("big:" .. tostring(bytes)) or "unsized"}
end
return {count, redis.sha1hex(rcall("LINDEX", KEYS[1], -1) or "")}
