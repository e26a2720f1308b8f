-- Inlined by queues/scripts.py into the scripts that count a list state (they define `rcall` first).
-- BullMQ < 5 kept a marker entry "0:<ts>" at the tail of wait/paused; it is not a job.
local function listCount(key)
  local n = rcall("LLEN", key)
  if n > 0 then
    local tail = rcall("LINDEX", key, -1)
    if tail and string.sub(tail, 1, 2) == "0:" then
      n = n - 1
    end
  end
  return n
end
