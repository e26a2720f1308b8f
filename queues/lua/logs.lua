--[[
  Read-only page of a job's log lines, each cut to a maximum size. A logs key of another type than
  a list (another program wrote it) reads as no lines.

    KEYS[1]  the job's logs list, `<prefix>:<name>:<id>:logs`
    ARGV[1]  start index
    ARGV[2]  end index (inclusive)
    ARGV[3]  max bytes kept of each line

  Returns { count, { line, ... } }
]]
local rcall = redis.call
local maxLen = tonumber(ARGV[3])
local ok, count = pcall(rcall, "LLEN", KEYS[1])
if not ok then
  return {0, {}}
end
local lines = {}
if count > 0 then
  for i, line in ipairs(rcall("LRANGE", KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))) do
    if #line > maxLen then
      line = string.sub(line, 1, maxLen)
    end
    lines[i] = line
  end
end
return {count, lines}
