--[[
  Read-only: the flow links an action would follow out of its queue, so that it can be refused when
  they reach a queue the dashboard must not change. BullMQ's scripts change a job's parent when they
  retry or remove the job (and, removing a parent in the same queue, its parent in turn), and remove a
  job's descendants with it. Everything read here is bounded by `maxNodes`.

    KEYS[1]  queue key prefix, `<prefix>:<name>:`
    ARGV[1]  "job" or "range"
    "job":   ARGV[2] job id, ARGV[3] "1" to walk the job's descendants, ARGV[4] max nodes
    "range": ARGV[2] state key suffix, ARGV[3] "1" for a list, ARGV[4] start, ARGV[5] end, ARGV[6] max nodes

  Returns { { ancestor job key, ... }, { descendant job key, ... }, complete (1, or 0 when a bound was
  hit), ids read (range mode) }.
]]
local rcall = redis.call
local p = KEYS[1]
local mode = ARGV[1]

local ancestors, descendants = {}, {}
local seen = {}
local complete = 1
local nodes = 0
local maxNodes

local function parentOf(jobKey)
  local ok, parentKey = pcall(rcall, "HGET", jobKey, "parentKey")
  if ok and type(parentKey) == "string" and parentKey ~= "" then
    return parentKey
  end
  return nil
end

-- The parent, and while a parent is in this queue (BullMQ removes it here too), its parent, up to
-- maxNodes in all: a longer chain makes the answer incomplete (the action is then refused).
local function addAncestors(jobKey)
  local parentKey = parentOf(jobKey)
  while parentKey and not seen[parentKey] do
    seen[parentKey] = true
    ancestors[#ancestors + 1] = parentKey
    nodes = nodes + 1
    if nodes > maxNodes then
      complete = 0
      return
    end
    if string.sub(parentKey, 1, #p) ~= p then
      return
    end
    parentKey = parentOf(parentKey)
  end
end

local function sizeOf(command, key)
  local ok, n = pcall(rcall, command, key)
  if ok and type(n) == "number" then
    return n
  end
  return 0
end

local function walkDescendants(rootKey)
  local queue = {rootKey}
  local head = 1
  while head <= #queue do
    local key = queue[head]
    head = head + 1
    local sizes = sizeOf("SCARD", key .. ":dependencies") + sizeOf("HLEN", key .. ":processed")
      + sizeOf("HLEN", key .. ":failed") + sizeOf("ZCARD", key .. ":unsuccessful")
    if nodes + sizes > maxNodes then
      complete = 0
      return
    end
    nodes = nodes + sizes
    local children = {}
    if sizes > 0 then
      for _, child in ipairs(rcall("SMEMBERS", key .. ":dependencies")) do children[#children + 1] = child end
      for _, child in ipairs(rcall("HKEYS", key .. ":processed")) do children[#children + 1] = child end
      for _, child in ipairs(rcall("HKEYS", key .. ":failed")) do children[#children + 1] = child end
      for _, child in ipairs(rcall("ZRANGE", key .. ":unsuccessful", 0, -1)) do children[#children + 1] = child end
    end
    for _, child in ipairs(children) do
      if not seen[child] then
        seen[child] = true
        descendants[#descendants + 1] = child
        queue[#queue + 1] = child
      end
    end
  end
end

if mode == "job" then
  maxNodes = tonumber(ARGV[4])
  local jobKey = p .. ARGV[2]
  addAncestors(jobKey)
  if ARGV[3] == "1" then
    walkDescendants(jobKey)
  end
  return {ancestors, descendants, complete, 1}
end

maxNodes = tonumber(ARGV[6])
local stateKey = p .. ARGV[2]
local ok, ids
if ARGV[3] == "1" then
  ok, ids = pcall(rcall, "LRANGE", stateKey, tonumber(ARGV[4]), tonumber(ARGV[5]))
else
  ok, ids = pcall(rcall, "ZRANGE", stateKey, tonumber(ARGV[4]), tonumber(ARGV[5]))
end
if not ok then
  return {ancestors, descendants, complete, 0}
end
for _, id in ipairs(ids) do
  addAncestors(p .. id)
  if complete == 0 then
    break
  end
end
return {ancestors, descendants, complete, #ids}
