--[[
  Read-only job counts of one queue, in the order of queues.states.STATE_KEYS, then meta's paused
  flag and version.

    KEYS[1]  queue key prefix, `<prefix>:<name>:`
]]
local rcall = redis.call
local p = KEYS[1]

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

local meta = rcall("HMGET", p .. "meta", "paused", "version")
return {
  listCount(p .. "wait"),
  rcall("LLEN", p .. "active"),
  rcall("ZCARD", p .. "prioritized"),
  rcall("ZCARD", p .. "delayed"),
  rcall("ZCARD", p .. "completed"),
  rcall("ZCARD", p .. "failed"),
  rcall("ZCARD", p .. "waiting-children"),
  listCount(p .. "paused"),
  meta[1] or "",
  meta[2] or "",
}
