--[[
  Read-only: what a watched job's logs look like now, to tell whether they moved: their length and a
  digest of the last line (BullMQ's keepLogs trims old lines, so the length alone can stay the same).
  The last line is read only when lines are small enough to copy (MEMORY USAGE estimate).

    KEYS[1]  the job's logs list
    ARGV[1]  max bytes of one line copied into this script

  Returns { length, sha1 of the last line or "" }
]]
local rcall = redis.call
local ok, count = pcall(rcall, "LLEN", KEYS[1])
if not ok or count == 0 then
  return {0, ""}
end
local sized, bytes = pcall(rcall, "MEMORY", "USAGE", KEYS[1], "SAMPLES", 5)
if not sized or not bytes or math.ceil(bytes / count) > tonumber(ARGV[1]) then
  return {count, "big:" .. tostring(bytes)}
end
return {count, redis.sha1hex(rcall("LINDEX", KEYS[1], -1) or "")}
