--[[
  Read-only: the whole flow a job belongs to, in one bounded walk. Up from the job through
  `parentKey` to the root (at most `maxUp` parents, stopping at a cycle, a missing key or a key that
  is not a job), then down from the root through each job's children: `<job key>:dependencies` (set,
  pending), `:processed` (hash, completed), `:failed` (hash: children that failed and were ignored,
  ignoreDependencyOnFailure / continueParentOnFailure; Node's `ignored`) and `:unsuccessful` (zset:
  children that failed their parent, failParentOnFailure; Node's `failed`).

  The path from the root to the job is always shown, whatever its parents' other children; the job's
  own children are listed next, then its subtree, then the rest of the tree, until `maxNodes`.

  Every read is bounded, whatever the keys hold: at most `maxNodes` nodes, `maxChildren` children
  listed for each node (`maxChildrenSelf` for the job itself), keys longer than `maxKey` bytes are not
  followed, names longer than `maxName` bytes are not read, child keys and names copy at most `budget`
  bytes in all (plus one set member or hash entry: Redis cannot measure one before it is copied), and
  the active/wait/paused lists are searched for states `maxScan` entries in all.

  A node is a job only when its key is a hash with BullMQ's `timestamp` field, its queue is found (the
  longest `<queue key>` before a `:` of the key whose `meta` is a BullMQ queue's, at most 32 tried), and
  the rest is not one of the queue's own key names (ARGV[11...]). Nothing else is read of other keys.

    KEYS[1]  queue key prefix of the job, `<prefix>:<name>:`
    ARGV[1]  job id
    ARGV[2]  maxUp        ARGV[3] maxBelow (levels expanded below the job's depth)
    ARGV[4]  maxNodes     ARGV[5] maxChildren        ARGV[6] maxChildrenSelf
    ARGV[7]  maxKey       ARGV[8] budget             ARGV[9] maxScan        ARGV[10] maxName
    ARGV[11…] the queue's own key names: "n:<name>", "h:<head>" (starts with), "s:<suffix>" (ends with)

  Returns false when the key does not exist, { "not-a-job", key type } when it is not a job, else
  { { ancestorsCut, cycle, danglingShape, danglingKey, nodesCut, budgetSpent, scanSpent },
    { node, ... } }, each node
  { key, parentIndex (0 for the root), relation, shape, queueKeyLength, name, nameSize, state,
    pending, processed, ignored, failed, expanded, depth, current }
  relation: "root", "pending", "processed", "ignored", "failed", or "unlisted" (a parent on the path
  that does not list it); shape: "job", "missing", "not-a-job", "long-key" (cut, not followed),
  "seen" (already in the tree: a cycle).
]]
local rcall = redis.call
local p = KEYS[1]
local jobId = ARGV[1]
local maxUp = tonumber(ARGV[2])
local maxBelow = tonumber(ARGV[3])
local maxNodes = tonumber(ARGV[4])
local maxChildren = tonumber(ARGV[5])
local maxChildrenSelf = tonumber(ARGV[6])
local maxKey = tonumber(ARGV[7])
local budget = tonumber(ARGV[8])
local scanLeft = tonumber(ARGV[9])
local maxName = tonumber(ARGV[10])

-- @include job_state
-- @include bounded_copy

local startShape, startType = jobShape(p, jobId)
if startShape == "none" then
  return false
end
if startShape == "not-a-job" then
  return {"not-a-job", startType}
end

-- ancestorsCut, cycle, danglingShape, danglingKey, nodesCut, budgetSpent, scanSpent
local meta = {0, 0, "", "", 0, 0, 0}
local ownNames, ownHeads, ownSuffixes = {}, {}, {}
for i = 11, #ARGV do
  local kind, name = string.sub(ARGV[i], 1, 1), string.sub(ARGV[i], 3)
  if kind == "n" then
    ownNames[name] = true
  elseif kind == "h" then
    ownHeads[#ownHeads + 1] = name
  else
    ownSuffixes[#ownSuffixes + 1] = name
  end
end

local function isOwnKeyName(id)
  if ownNames[id] then
    return true
  end
  for _, head in ipairs(ownHeads) do
    if string.sub(id, 1, #head) == head then
      return true
    end
  end
  for _, suffix in ipairs(ownSuffixes) do
    if #id >= #suffix and string.sub(id, -#suffix) == suffix then
      return true
    end
  end
  return string.sub(id, 1, 7) == "repeat:" and not string.match(id, "^repeat:.+:%d+$")
end

-- Whether `queueKey` is a BullMQ queue (its meta has BullMQ's fingerprint), remembered per walk.
local queues = {}
queues[string.sub(p, 1, -2)] = true
local function isQueue(queueKey)
  local known = queues[queueKey]
  if known == nil then
    local ok, fields = pcall(rcall, "HMGET", queueKey .. ":meta", "timestamp", "opts.maxLenEvents", "version")
    known = ok and not fields[1] and (fields[2] or (fields[3] and string.sub(fields[3], 1, 7) == "bullmq:"))
      and true or false
    queues[queueKey] = known
  end
  return known
end

-- The length of the key's queue key (the longest one before a `:`), or 0 when none is a queue.
local function queueOf(key)
  local last = #key
  for _ = 1, 32 do
    local colon = string.match(string.sub(key, 1, last), ".*():")
    if not colon then
      return 0
    end
    if colon > 1 and isQueue(string.sub(key, 1, colon - 1)) then
      return colon - 1
    end
    last = colon - 1
  end
  return 0
end

-- "missing", "not-a-job", or "job" and the length of its queue key (0: no queue found for it).
local function shapeOf(key)
  local keyType = rcall("TYPE", key)["ok"]
  if keyType == "none" then
    return "missing", 0
  end
  if keyType ~= "hash" or rcall("HEXISTS", key, "timestamp") == 0 then
    return "not-a-job", 0
  end
  local length = queueOf(key)
  if length > 0 and isOwnKeyName(string.sub(key, length + 2)) then
    return "not-a-job", 0
  end
  return "job", length
end

local function listedLength(key)
  local ok, n = pcall(rcall, "LLEN", key)
  if ok and type(n) == "number" then
    return n
  end
  return 0
end

-- The state as BullMQ's getState names it; the lists are searched only while scanLeft lasts.
local function stateOf(queueKey, id)
  local prefix = queueKey .. ":"
  for _, entry in ipairs({{"completed", "completed"}, {"failed", "failed"}, {"delayed", "delayed"},
      {"prioritized", "prioritized"}, {"waiting-children", "waiting-children"}}) do
    if type(redis.pcall("ZSCORE", prefix .. entry[1], id)) == "string" then
      return entry[2]
    end
  end
  for _, entry in ipairs({{"active", "active"}, {"wait", "waiting"}, {"paused", "waiting"}}) do
    if scanLeft <= 0 then
      meta[7] = 1
      return "unknown"
    end
    local length = listedLength(prefix .. entry[1])
    if length > 0 then
      local allotted = math.min(length, scanLeft)
      scanLeft = scanLeft - allotted
      if type(redis.pcall("LPOS", prefix .. entry[1], id, "MAXLEN", allotted)) == "number" then
        return entry[2]
      end
    end
  end
  return "unknown"
end

local function sizeOf(command, key)
  local n = redis.pcall(command, key)
  if type(n) == "number" then
    return n
  end
  return 0
end

local function cut(value, limit)
  if #value > limit then
    return string.sub(value, 1, limit)
  end
  return value
end

local nodes = {}
local seen = {}

-- A node for `key`: what it is, its name, state and child counts (none of a key that is no job).
local function addNode(key, parentIndex, relation, depth, shape)
  local node = {cut(key, maxKey), parentIndex, relation, "", 0, "", 0, "", 0, 0, 0, 0, 0, depth, 0}
  nodes[#nodes + 1] = node
  if #nodes >= maxNodes then
    meta[5] = 1
  end
  if shape then
    node[4] = shape
    return #nodes
  end
  seen[key] = true
  local length
  node[4], length = shapeOf(key)
  if node[4] ~= "job" then
    return #nodes
  end
  node[5] = length
  local nameSize = rcall("HSTRLEN", key, "name")
  node[7] = nameSize
  if nameSize > 0 and nameSize <= maxName and nameSize <= budget then
    budget = budget - nameSize
    node[6] = rcall("HGET", key, "name")
  end
  node[8] = length > 0 and stateOf(string.sub(key, 1, length), string.sub(key, length + 2)) or "unknown"
  node[9] = sizeOf("SCARD", key .. ":dependencies")
  node[10] = sizeOf("HLEN", key .. ":processed")
  node[11] = sizeOf("HLEN", key .. ":failed")
  node[12] = sizeOf("ZCARD", key .. ":unsuccessful")
  return #nodes
end

-- Up: the path from the job to its root, each parent a job not seen before.
local startKey = p .. jobId
local chain = {startKey}
local onChain = {[startKey] = true}
while true do
  local current = chain[#chain]
  local size = rcall("HSTRLEN", current, "parentKey")
  if size == 0 then
    break
  end
  if #chain > maxUp then
    meta[1] = 1
    break
  end
  if size > maxKey or size > budget then
    meta[3], meta[4] = "long-key", ""
    break
  end
  budget = budget - size
  local parentKey = rcall("HGET", current, "parentKey")
  if onChain[parentKey] then
    meta[2] = 1
    break
  end
  local shape = shapeOf(parentKey)
  if shape ~= "job" then
    meta[3], meta[4] = shape, parentKey
    break
  end
  onChain[parentKey] = true
  chain[#chain + 1] = parentKey
end

-- Down: children of one node, bounded; `first` (a key on the path) is listed before the others.
local relations = {
  {"failed", ":unsuccessful", "zset"},
  {"ignored", ":failed", "hash"},
  {"pending", ":dependencies", "set"},
  {"processed", ":processed", "hash"},
}
local fifo = {}

local function memberOf(key, child)
  if redis.pcall("SISMEMBER", key .. ":dependencies", child) == 1 then
    return "pending"
  elseif redis.pcall("HEXISTS", key .. ":processed", child) == 1 then
    return "processed"
  elseif redis.pcall("HEXISTS", key .. ":failed", child) == 1 then
    return "ignored"
  elseif type(redis.pcall("ZSCORE", key .. ":unsuccessful", child)) == "string" then
    return "failed"
  end
  return "unlisted"
end

local function addChild(member, index, relation, depth, queueIt, onPath)
  local shape = nil
  if #member > maxKey then
    shape = "long-key"
  elseif seen[member] and not onPath then
    shape = "seen"
  end
  local child = addNode(member, index, relation, depth, shape)
  if queueIt and nodes[child][4] == "job" then
    fifo[#fifo + 1] = child
  end
  return child
end

-- Up to `limit` members of one collection within the tree's budget (includes/bounded_copy.lua).
local function members(key, kind, count, limit)
  local out
  out, budget = boundedMembers(key, kind, count, limit, budget)
  return out
end

local function expand(index, limit, first, queueChildren)
  local node = nodes[index]
  local key = node[1]
  node[13] = 1
  local listed = 0
  local firstIndex = nil
  if first then
    firstIndex = addChild(first, index, memberOf(key, first), node[14] + 1, false, true)
    listed = 1
  end
  local counts = {node[12], node[11], node[9], node[10]}
  for r, relation in ipairs(relations) do
    if counts[r] > 0 then
      if #nodes >= maxNodes or listed >= limit then
        break
      end
      if budget <= 0 then
        meta[6] = 1
        break
      end
      local wanted = math.min(limit - listed, maxNodes - #nodes)
      -- a count above 0 came from the command of the collection's type (see sizeOf)
      local collection = members(key .. relation[2], relation[3], counts[r], wanted + (first and 1 or 0))
      for _, member in ipairs(collection) do
        if member ~= first then
          if #nodes >= maxNodes or listed >= limit then
            break
          end
          addChild(member, index, relation[1], node[14] + 1, queueChildren)
          listed = listed + 1
        end
      end
    end
  end
  if budget <= 0 then
    meta[6] = 1
  end
  return firstIndex
end

-- The root, then the path down to the job with each parent's other children. A job on the path that
-- another parent lists too is shown on the path only.
for _, key in ipairs(chain) do
  seen[key] = true
end
local rootIndex = addNode(chain[#chain], 0, "root", 0, nil)
local others = {}
local index = rootIndex
for i = #chain, 2, -1 do
  local before = #nodes
  local nextIndex = expand(index, maxChildren, chain[i - 1], false)
  for n = before + 1, #nodes do
    if n ~= nextIndex and nodes[n][4] == "job" then
      others[#others + 1] = n
    end
  end
  if not nextIndex then
    break
  end
  index = nextIndex
end
local startIndex = index
nodes[startIndex][15] = 1
local maxDepth = nodes[startIndex][14] + maxBelow

-- The job's subtree first, breadth first, then the rest of the tree.
local function walk(limit)
  local head = 1
  while head <= #fifo and #nodes < maxNodes do
    local n = fifo[head]
    head = head + 1
    if nodes[n][14] < maxDepth then
      expand(n, limit, nil, true)
    end
  end
  fifo = {}
end

if #nodes < maxNodes and nodes[startIndex][14] < maxDepth then
  expand(startIndex, maxChildrenSelf, nil, true)
end
walk(maxChildren)
fifo = others
walk(maxChildren)

return {meta, nodes}
