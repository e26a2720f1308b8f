--[[
  Read-only page of a job's log lines, each cut to a maximum size. Redis cannot read part of a line,
  so the lines copied into this script are bounded by a byte budget (includes/bounded_copy.lua: the
  budget plus one line at most, and no line when they are all over the copy bound); the lines of the page past the budget are counted, not read. A logs
  key of another type than a list (another program wrote it) reads as no lines.

    KEYS[1]  the job's logs list, `<prefix>:<name>:<id>:logs`
    ARGV[1]  start index
    ARGV[2]  end index (inclusive)
    ARGV[3]  max bytes kept of each line
    ARGV[4]  max bytes of one line copied into this script (lines all longer are not read)
    ARGV[5]  max bytes copied in all

  Returns { count, { line, ... }, lines of the page not read }
]]
local rcall = redis.call
local first = tonumber(ARGV[1])
local last = tonumber(ARGV[2])
local maxLen = tonumber(ARGV[3])
local maxCopy = tonumber(ARGV[4])
local budget = tonumber(ARGV[5])

-- @include bounded_copy

local ok, count = pcall(rcall, "LLEN", KEYS[1])
if not ok or count == 0 or first >= count then
  return {ok and count or 0, {}, 0}
end
local wanted = math.min(last, count - 1) - first + 1
local lines = boundedListRange(KEYS[1], count, first, first + wanted - 1, budget, maxCopy)
for i, line in ipairs(lines) do
  if #line > maxLen then
    lines[i] = string.sub(line, 1, maxLen)
  end
end
return {count, lines, wanted - #lines}
