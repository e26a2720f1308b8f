--[[
  Read-only: the id of the newest entry of each stream ("0-0" when it is empty or missing, false when
  the key is not a stream), without sending the entry (BullMQ puts job authors' data in events).

    KEYS[…]  stream keys

  Returns one id (or false) per key, in order.
]]
local rcall = redis.call
local out = {}
for i, key in ipairs(KEYS) do
  local ok, newest = pcall(rcall, "XREVRANGE", key, "+", "-", "COUNT", 1)
  if not ok then
    out[i] = false
  elseif #newest == 0 then
    out[i] = "0-0"
  else
    out[i] = newest[1][1]
  end
end
return out
