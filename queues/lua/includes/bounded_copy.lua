-- Inlined by queues/scripts.py into scripts that copy list elements or stream entries (they define
-- `rcall` first). Redis cannot measure one element before copying it, and MEMORY USAGE with a few
-- samples only looks at the first nodes (a job author can write short lines first and long ones
-- after), so a range is read in one command only when the whole key fits the budget: MEMORY USAGE
-- with SAMPLES 0 walks the key's nodes (about a hundred elements each for lists and streams), not its
-- elements. Otherwise elements are read one at a time until the budget is spent, so what is copied is
-- at most the budget plus one element.

-- The key's size in memory; nil when the key is gone or MEMORY is not allowed (an ACL without
-- +memory, a managed Redis): then nothing is read whole, only element by element.
local function keyBytes(key)
  local sized, bytes = pcall(rcall, "MEMORY", "USAGE", key, "SAMPLES", 0)
  if sized and bytes then
    return bytes
  end
  return nil
end

local function wholeKeyFits(key, budget)
  local bytes = keyBytes(key)
  return bytes ~= nil and bytes <= budget
end

-- A hash stored as a listpack (or ziplist) is small by Redis's own rule (hash-max-listpack-entries
-- and -value, 128 fields of 64 bytes by default): the measure of a hash when MEMORY is not allowed.
local function compactHash(key)
  local ok, encoding = pcall(rcall, "OBJECT", "ENCODING", key)
  return ok and (encoding == "listpack" or encoding == "ziplist")
end

-- Elements first..last (inclusive, from the head) of a list of `count` elements; returns them and the
-- bytes copied. Lines that are all long (an average over a few samples above maxEach) are not read at
-- all; one by one, reading stops after an element longer than maxEach.
local function boundedListRange(key, count, first, last, budget, maxEach)
  local items, spent = {}, 0
  local sampled, estimate = pcall(rcall, "MEMORY", "USAGE", key, "SAMPLES", 5)
  -- MEMORY USAGE counts the allocator's size classes and node headers (a 900 KB line costs over 1 MB):
  -- half an element of slack, so lines just under maxEach are read one by one rather than skipped.
  if sampled and estimate and count > 0 and estimate / count > maxEach * 1.5 then
    return items, spent
  end
  if wholeKeyFits(key, budget) then
    items = rcall("LRANGE", key, first, last)
    for _, item in ipairs(items) do
      spent = spent + #item
    end
    return items, spent
  end
  for index = first, last do
    if spent >= budget then
      break
    end
    local item = rcall("LINDEX", key, index)
    if not item then
      break
    end
    spent = spent + #item
    items[#items + 1] = item
    if #item > maxEach then
      break
    end
  end
  return items, spent
end

-- Stream entries read at most at once when the stream does not fit the budget whole, and the size
-- (bytes) up to which an entry counts as small enough to let the step grow.
local STREAM_STEP_MAX = 32
local STREAM_SMALL_ENTRY = 4096

local function entryBytes(entry)
  local bytes = #entry[1]
  for _, value in ipairs(entry[2]) do
    bytes = bytes + #value
  end
  return bytes
end

-- Up to `count` entries of a stream after the id `after` (exclusive); returns them and the bytes copied.
local function boundedStreamAfter(key, after, count, budget)
  if wholeKeyFits(key, budget) then
    local entries = rcall("XRANGE", key, "(" .. after, "+", "COUNT", count)
    local spent = 0
    for _, entry in ipairs(entries) do
      spent = spent + entryBytes(entry)
    end
    return entries, spent
  end
  -- Too large to read at once: in steps that start at one entry and double (up to STREAM_STEP_MAX)
  -- while every entry read is small, and fall back to one after a large one. A stream as BullMQ
  -- writes it (entries of a few hundred bytes) is read in steps of 32, not 2,000 calls of one entry
  -- (44 ms inside Redis); a copy goes over the budget by at most STREAM_STEP_MAX entries.
  local entries, spent, start, step = {}, 0, "(" .. after, 1
  while #entries < count and spent < budget do
    local batch = rcall("XRANGE", key, start, "+", "COUNT", math.min(step, count - #entries))
    if #batch == 0 then
      break
    end
    local small = true
    for _, entry in ipairs(batch) do
      local bytes = entryBytes(entry)
      entries[#entries + 1] = entry
      spent = spent + bytes
      small = small and bytes <= STREAM_SMALL_ENTRY
    end
    start = "(" .. batch[#batch][1]
    step = small and math.min(step * 2, STREAM_STEP_MAX) or 1
  end
  return entries, spent
end

-- Up to `limit` members of a set, hash (its field names) or zset (in score order) of `count` members,
-- copying at most about `budget` bytes; returns them and the budget left (below 0 when the last member
-- read went over it). Member names are chosen by job authors (flow children's keys): a key that fits
-- the budget whole is read in large steps; a larger one a member at a time (zsets) or a bucket at a
-- time (SSCAN/HSCAN COUNT 1, a bounded number of calls: a sparse table can answer with nothing), and
-- the member that spends the budget is the last listed, however many members its bucket holds.
local function boundedMembers(key, kind, count, limit, budget)
  local out = {}
  if limit <= 0 or budget <= 0 then
    return out, budget
  end
  if kind == "zset" then
    if wholeKeyFits(key, budget) then
      out = rcall("ZRANGE", key, 0, limit - 1)
      for _, member in ipairs(out) do
        budget = budget - #member
      end
      return out, budget
    end
    for index = 0, math.min(count, limit) - 1 do
      if budget <= 0 then
        break
      end
      local one = rcall("ZRANGE", key, index, index)
      if #one == 0 then
        break
      end
      budget = budget - #one[1]
      out[#out + 1] = one[1]
    end
    return out, budget
  end
  local step = kind == "set" and 1 or 2 -- a hash reply alternates field and value
  local small = count <= 4 * limit and wholeKeyFits(key, budget)
  local batch = small and limit or 1
  local maxCalls = small and 10 or 4 * limit
  local cursor, calls = "0", 0
  repeat
    local reply
    if kind == "set" then
      reply = rcall("SSCAN", key, cursor, "COUNT", batch)
    else
      reply = rcall("HSCAN", key, cursor, "COUNT", batch)
    end
    cursor = reply[1]
    calls = calls + 1
    for i = 1, #reply[2], step do
      local size = #reply[2][i] + (step == 2 and #reply[2][i + 1] or 0)
      if budget > 0 and #out < limit then
        out[#out + 1] = reply[2][i]
      end
      budget = budget - size
    end
  until cursor == "0" or calls >= maxCalls or #out >= limit or budget <= 0
  return out, budget
end
