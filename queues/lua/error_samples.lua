--[[
  Read-only summaries of a few jobs by id (the sample job of each error group), in the row shape of
  job_page.lua so queues.jobs.parse_summary reads them: { id, { SUMMARY values }, optsAttempts } or,
  for a key that is not a hash, { id, false, false, its type }; a job whose hash is gone is
  { id, false, false, "gone" }. A field longer than MAX_COPY is not read ("[not read: N bytes]"), the
  others are cut to ARGV[1] bytes.

    KEYS[1]  queue key prefix, `<prefix>:<name>:`
    ARGV[1]  max bytes kept of each text field
    ARGV[2…] job ids
]]
local rcall = redis.call
local p = KEYS[1]
local maxLen = tonumber(ARGV[1])
local MAX_COPY = 65536

local FIELDS = {"name", "timestamp", "processedOn", "finishedOn", "atm", "attemptsMade",
                "progress", "delay", "priority", "failedReason", "opts"}

local function attemptsOf(opts)
  if type(opts) ~= "string" then
    return false
  end
  local ok, decoded = pcall(cjson.decode, opts)
  if ok and type(decoded) == "table" and type(decoded["attempts"]) == "number" then
    return decoded["attempts"]
  end
  return false
end

local result = {}
for i = 2, #ARGV do
  local id = ARGV[i]
  local jobKey = p .. id
  local fieldCount = redis.pcall("HLEN", jobKey)
  if type(fieldCount) ~= "number" then
    result[#result + 1] = {id, false, false, rcall("TYPE", jobKey)["ok"]}
  elseif fieldCount == 0 then
    result[#result + 1] = {id, false, false, "gone"}
  else
    local wanted, sizes = {}, {}
    for index, name in ipairs(FIELDS) do
      local size = rcall("HSTRLEN", jobKey, name)
      if size > MAX_COPY then
        sizes[index] = size
        wanted[index] = "\0absent"
      else
        wanted[index] = name
      end
    end
    local values = rcall("HMGET", jobKey, unpack(wanted))
    local opts = values[#FIELDS]
    local row = {}
    for index = 1, #FIELDS - 1 do
      local value = values[index]
      if sizes[index] then
        row[index] = "[not read: " .. sizes[index] .. " bytes]"
      elseif not value then
        row[index] = false
      elseif #value > maxLen then
        row[index] = string.sub(value, 1, maxLen)
      else
        row[index] = value
      end
    end
    result[#result + 1] = {id, row, attemptsOf(opts)}
  end
end
return result
