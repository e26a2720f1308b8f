-- Inlined by queues/scripts.py into the scripts that count a list state (they define `rcall` first).
-- BullMQ < 5 kept a marker entry "0:<ts>" at the tail of wait/paused; it is not a job. Only such a
-- queue's tail is read: its meta has no BullMQ >= 5 version and it has no `marker` key (BullMQ 5 and
-- the Python package keep their marker there). Reading a tail copies it whole, and a job author can
-- make an id as long as they like.
local function isLegacyQueue(p, version)
  if version and string.match(version, "^bullmq:(%d+)") and tonumber(string.match(version, "^bullmq:(%d+)")) >= 5 then
    return false
  end
  return rcall("EXISTS", p .. "marker") == 0
end

local function listCount(key, legacy)
  local n = rcall("LLEN", key)
  if n > 0 and legacy then
    local tail = rcall("LINDEX", key, -1)
    if tail and string.sub(tail, 1, 2) == "0:" then
      n = n - 1
    end
  end
  return n
end
