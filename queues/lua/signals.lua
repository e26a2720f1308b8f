--[[
  Read-only: what the alerts and the Prometheus scrape know of one queue beyond its counts.

    counts.lua's reply (the counts, paused flag, version, broken keys, failure recency), then
    { completed total or false, failed total or false }   the `count` fields of metrics:completed /
                                                         metrics:failed, as Node's exporter reads them
    oldest waiting since (ms) or false                    see includes/oldest_waiting.lua
    the events tally or false (when ARGV[2] is "")

  The events tally counts the `completed`, `failed` and `stalled` events of the queue's stream after
  the id ARGV[2] (exclusive), at most ARGV[3] entries and about ARGV[4] bytes copied (entries are
  copied whole: a failed event carries its failedReason, which a job author can make huge), by the
  minute of their id:
    { last id read, capped (1 when the entry or byte cap stopped the read), problem ("", "future" or
      "error: ..."), minute ms, completed, failed, stalled, minute ms, ... }
  The caller keeps the last id and asks for what came after it on the next tick, so a tick reads
  only the events since the one before.

    KEYS[1]  queue key prefix, `<prefix>:<name>:`
    ARGV[1]  now, in ms
    ARGV[2]  events stream id to count after ("" for no tally)
    ARGV[3]  most entries to read
    ARGV[4]  byte budget of the read
]]
local rcall = redis.call

-- @include list_count
-- @include queue_counts
-- @include bounded_copy
-- @include oldest_waiting

local function total(key)
  local ok, size = pcall(rcall, "HSTRLEN", key, "count")
  if not ok or size > 32 then
    return false
  end
  return rcall("HGET", key, "count") or "0"
end

local WANTED = { completed = 1, failed = 2, stalled = 3 }

local function eventName(fields)
  for i = 1, #fields - 1, 2 do
    if fields[i] == "event" then
      return fields[i + 1]
    end
  end
  return nil
end

-- Entries more than a minute ahead of `now` were written with explicit ids by someone else than
-- BullMQ (whose ids are Redis's clock): counting them would keep them in the window for as long as
-- they are ahead, so the tally says "future" instead and counts nothing.
local FUTURE_MS = 60000

local function idMs(id)
  return tonumber(string.match(id, "^(%d+)"))
end

local function tally(key, after, limit, budget, now)
  local kind = rcall("TYPE", key)["ok"]
  if kind == "none" then
    return { after, 0, "" }
  end
  if kind ~= "stream" then
    return false
  end
  local afterMs = idMs(after)
  if afterMs and afterMs > now + FUTURE_MS then
    return { after, 0, "future" }
  end
  local entries, spent = boundedStreamAfter(key, after, limit, budget)
  local last = after
  local order, minutes = {}, {}
  for _, entry in ipairs(entries) do
    local ms = idMs(entry[1]) or 0
    if ms > now + FUTURE_MS then
      return { after, 0, "future" }
    end
    last = entry[1]
    local slot = WANTED[eventName(entry[2])]
    if slot then
      local minute = ms - ms % 60000
      local bucket = minutes[minute]
      if not bucket then
        bucket = { 0, 0, 0 }
        minutes[minute] = bucket
        order[#order + 1] = minute
      end
      bucket[slot] = bucket[slot] + 1
    end
  end
  local capped = (#entries >= limit or spent >= budget) and 1 or 0
  local reply = { last, capped, "" }
  for _, minute in ipairs(order) do
    local bucket = minutes[minute]
    reply[#reply + 1] = string.format("%.0f", minute)
    reply[#reply + 1] = bucket[1]
    reply[#reply + 1] = bucket[2]
    reply[#reply + 1] = bucket[3]
  end
  return reply
end

local p = KEYS[1]
local reply = queueCounts(p, ARGV[1])
local version = reply[10]
reply[#reply + 1] = { total(p .. "metrics:completed"), total(p .. "metrics:failed") }
reply[#reply + 1] = oldestWaitingSince(p, isLegacyQueue(p, version))
if ARGV[2] ~= "" then
  -- An error of the tally (an id Redis refuses to range from) must not fail the counts read above.
  local ok, counted = pcall(tally, p .. "events", ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), nowMs(ARGV[1]))
  if ok then
    reply[#reply + 1] = counted
  else
    reply[#reply + 1] = { ARGV[2], 0, "error: " .. tostring(counted) }
  end
else
  reply[#reply + 1] = false
end
return reply
