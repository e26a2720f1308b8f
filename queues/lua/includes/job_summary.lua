-- Inlined by queues/scripts.py after bounded_copy (it uses wholeKeyFits): a job's summary fields, the
-- row of a job list (job_page.lua, search.lua, error_samples.lua) that queues.jobs.parse_summary reads.

local SUMMARY = {"name", "timestamp", "processedOn", "finishedOn", "atm", "attemptsMade",
                 "progress", "delay", "priority", "failedReason"}
local SUMMARY_READ = {unpack(SUMMARY)}
SUMMARY_READ[#SUMMARY_READ + 1] = "opts"
-- A hash of at most this many fields that fits maxCopy whole is read in one HMGET.
local SUMMARY_FEW_FIELDS = 64

-- opts.attempts; opts is written by other programs: survive invalid JSON.
local function summaryAttempts(opts)
  if type(opts) ~= "string" then
    return false
  end
  local ok, decoded = pcall(cjson.decode, opts)
  if ok and type(decoded) == "table" and type(decoded["attempts"]) == "number" then
    return decoded["attempts"]
  end
  return false
end

-- The SUMMARY values of a job hash, each cut to maxLen; opts.attempts; the bytes copied. Redis cannot
-- read part of a value: a field is read only when it is at most maxCopy bytes and fits `budget` (the
-- bytes the caller still may copy), else it shows as "[not read: N bytes]". A hash of few fields that
-- fits maxCopy whole is read in one HMGET while the budget has room for it; otherwise each field is
-- measured first (HSTRLEN).
local function readSummary(jobKey, fieldCount, maxLen, maxCopy, budget)
  local values, sizes, spent = nil, {}, 0
  if budget >= maxCopy and fieldCount <= SUMMARY_FEW_FIELDS and wholeKeyFits(jobKey, maxCopy) then
    values = rcall("HMGET", jobKey, unpack(SUMMARY_READ))
    for _, value in ipairs(values) do
      if value then
        spent = spent + #value
      end
    end
  else
    local wanted = {}
    for i, name in ipairs(SUMMARY_READ) do
      local size = rcall("HSTRLEN", jobKey, name)
      if size > maxCopy or size > budget - spent then
        sizes[i] = size
        wanted[i] = "\0absent"
      else
        wanted[i] = name
        spent = spent + size
      end
    end
    values = rcall("HMGET", jobKey, unpack(wanted))
  end
  local opts = table.remove(values)
  for i = 1, #SUMMARY do
    local value = values[i]
    if sizes[i] then
      values[i] = "[not read: " .. sizes[i] .. " bytes]"
    elseif not value then
      values[i] = false
    elseif #value > maxLen then
      values[i] = string.sub(value, 1, maxLen)
    end
  end
  return values, summaryAttempts(opts), spent
end
