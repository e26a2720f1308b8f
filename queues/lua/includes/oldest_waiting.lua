-- Inlined by queues/scripts.py after list_count (it uses isLegacyQueue's answer): when the job next in
-- line started waiting. Defines rcall-using functions; the script defines `rcall` first.
--
-- The job next in line is the tail of `wait` (BullMQ pushes new jobs at the head and workers take from
-- the tail) or of `paused` (BullMQ < 6 renames `wait` to it on pause and adds there while paused), and
-- the first member of `prioritized`; the older of them counts. Its waiting began at `timestamp + delay` of its hash (a delayed job waits from when it
-- was due). Low-priority jobs behind the first prioritized one are not looked at: the zset's scores
-- hold priority and order, not time, so finding the oldest would scan it.
--
-- Redis cannot measure one element before copying it, and a job author can make an id as long as
-- they like. The element is read only when the whole key is small (MAX_WHOLE_KEY) or its elements
-- are small on average (MAX_AVERAGE_BYTES): MEMORY USAGE of the list (SAMPLES 0: its nodes, about a
-- hundred elements each) or of the zset (SAMPLES 1: the first member, the very one read, times the
-- count). Otherwise, or without the MEMORY command for a key that is not compactly encoded, the age
-- is unknown, and so it is for keys over MAX_KEY_BYTES (a million short ids fit). A huge id can still
-- hide among enough short ones in a list; its copy is then bounded by MAX_KEY_BYTES, and a worker
-- taking that job copies it too. An id over 1 KB or fields over 32 bytes are not read further.
local MAX_WAITING_ID = 1024
local MAX_WHOLE_KEY = 1024 * 1024
local MAX_AVERAGE_BYTES = 256
local MAX_KEY_BYTES = 64 * 1024 * 1024

local function smallEnough(key, count, samples)
  local sized, bytes = pcall(rcall, "MEMORY", "USAGE", key, "SAMPLES", samples)
  if sized and bytes then
    return bytes <= MAX_WHOLE_KEY or (bytes <= count * MAX_AVERAGE_BYTES and bytes <= MAX_KEY_BYTES)
  end
  local encoded, encoding = pcall(rcall, "OBJECT", "ENCODING", key)
  return encoded and (encoding == "listpack" or encoding == "ziplist")
end

local function waitingSince(p, jobId)
  if not jobId or #jobId > MAX_WAITING_ID then
    return false
  end
  local key = p .. jobId
  local ok, sizes = pcall(function()
    return { rcall("HSTRLEN", key, "timestamp"), rcall("HSTRLEN", key, "delay") }
  end)
  if not ok or sizes[1] == 0 or sizes[1] > 32 or sizes[2] > 32 then
    return false
  end
  local fields = rcall("HMGET", key, "timestamp", "delay")
  local timestamp = tonumber(fields[1])
  if not timestamp then
    return false
  end
  return timestamp + (tonumber(fields[2]) or 0)
end

local function listTail(key, legacy)
  local ok, kind = pcall(rcall, "TYPE", key)
  if not ok or kind["ok"] ~= "list" then
    return false
  end
  local count = rcall("LLEN", key)
  if count == 0 or not smallEnough(key, count, 0) then
    return false
  end
  local tail = rcall("LINDEX", key, -1)
  if tail and legacy and string.sub(tail, 1, 2) == "0:" then
    tail = rcall("LINDEX", key, -2)
  end
  return tail
end

local function oldestWaitingSince(p, legacy)
  local oldest = false
  local function consider(since)
    if since and (not oldest or since < oldest) then
      oldest = since
    end
  end
  consider(waitingSince(p, listTail(p .. "wait", legacy)))
  consider(waitingSince(p, listTail(p .. "paused", legacy)))
  local prioritized = p .. "prioritized"
  local ok, kind = pcall(rcall, "TYPE", prioritized)
  if ok and kind["ok"] == "zset" then
    local count = rcall("ZCARD", prioritized)
    if count > 0 and smallEnough(prioritized, count, 1) then
      consider(waitingSince(p, rcall("ZRANGE", prioritized, 0, 0)[1]))
    end
  end
  if oldest then
    return string.format("%.0f", oldest)
  end
  return false
end
