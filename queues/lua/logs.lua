--[[
  Read-only page of a job's log lines, each cut to a maximum size. Redis cannot read part of a line,
  so the lines copied into this script are bounded first: their size is estimated with MEMORY USAGE
  (a few samples), and only as many lines as fit in the byte budget are read (none longer than the
  copy bound). A logs key of another type than a list (another program wrote it) reads as no lines.

    KEYS[1]  the job's logs list, `<prefix>:<name>:<id>:logs`
    ARGV[1]  start index
    ARGV[2]  end index (inclusive)
    ARGV[3]  max bytes kept of each line
    ARGV[4]  max bytes of one line copied into this script
    ARGV[5]  max bytes copied in all

  Returns { count, { line, ... }, lines of the page not read }
]]
local rcall = redis.call
local first = tonumber(ARGV[1])
local last = tonumber(ARGV[2])
local maxLen = tonumber(ARGV[3])
local maxCopy = tonumber(ARGV[4])
local budget = tonumber(ARGV[5])
local ok, count = pcall(rcall, "LLEN", KEYS[1])
if not ok or count == 0 or first >= count then
  return {ok and count or 0, {}, 0}
end
local wanted = math.min(last, count - 1) - first + 1
local sized, bytes = pcall(rcall, "MEMORY", "USAGE", KEYS[1], "SAMPLES", 5)
local each = (sized and bytes) and math.ceil(bytes / count) or 0
local affordable = wanted
if each > maxCopy then
  affordable = 0
elseif each > 0 then
  affordable = math.min(wanted, math.floor(budget / each))
end
local lines = {}
if affordable > 0 then
  for i, line in ipairs(rcall("LRANGE", KEYS[1], first, first + affordable - 1)) do
    if #line > maxLen then
      line = string.sub(line, 1, maxLen)
    end
    lines[i] = line
  end
end
return {count, lines, wanted - affordable}
