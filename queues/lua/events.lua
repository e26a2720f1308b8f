--[[
  Read-only: the entries of some events streams after given ids, with only what the live watcher uses
  (the entry id, the event name and the job id, each cut to 1 KB). BullMQ copies job authors' data into
  events (progress data, return values, failed reasons); reading whole entries with XREAD would send
  all of it over the wire, as often as events come.

    KEYS[…]  stream keys
    ARGV[1]  max entries per stream
    ARGV[2…] for each stream, the id after which to read (exclusive)

  Entries are copied whole into this script (XRANGE cannot read part of one), so each stream copies
  at most about 1 MB a call (see includes/bounded_copy.lua: the budget plus one entry).

  Returns, per stream in order: { { id, event, jobId (or ""), ... } } (a key that is not a stream
  reads as no entries), with one more element, "more", after the triples of a stream whose read
  stopped at the byte budget (it may hold more entries than were read).
]]
local rcall = redis.call
local count = tonumber(ARGV[1])
local MAX = 1024
local BUDGET = 1024 * 1024

-- @include bounded_copy

local function cut(value)
  if value and #value > MAX then
    return string.sub(value, 1, MAX)
  end
  return value or ""
end

local out = {}
for i, key in ipairs(KEYS) do
  local flat = {}
  local ok, entries, spent = pcall(boundedStreamAfter, key, ARGV[i + 1], count, BUDGET)
  if ok then
    for _, entry in ipairs(entries) do
      local event, jobId = "", ""
      local fields = entry[2]
      for f = 1, #fields, 2 do
        if fields[f] == "event" then
          event = cut(fields[f + 1])
        elseif fields[f] == "jobId" then
          jobId = cut(fields[f + 1])
        end
      end
      flat[#flat + 1] = entry[1]
      flat[#flat + 1] = event
      flat[#flat + 1] = jobId
    end
    if spent >= BUDGET then
      flat[#flat + 1] = "more"
    end
  end
  out[i] = flat
end
return out
