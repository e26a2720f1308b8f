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
-- A few sample jobs (one a group shown): what they may copy together.
local budget = 8 * 1024 * 1024

-- @include bounded_copy
-- @include job_summary

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
    local row, attempts, spent = readSummary(jobKey, fieldCount, maxLen, MAX_COPY, budget)
    budget = budget - spent
    result[#result + 1] = {id, row, attempts}
  end
end
return result
