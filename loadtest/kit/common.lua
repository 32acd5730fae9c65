-- Shared by the kit's wrk scripts (the kit writes common.lua followed by one script to a
-- temporary file). done() prints one line, "KIT-JSON {...}", that the kit parses:
-- latency percentiles in microseconds (99.9 included), wrk's error counters, and, when the
-- script counts them, the HTTP status of every answer and the time window it measured.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } kit_timespec;
int clock_gettime(int clk_id, kit_timespec *tp);
]]
local kit_ts = ffi.new("kit_timespec")

-- CLOCK_MONOTONIC in seconds, with nanosecond resolution (os.time() has only seconds).
function kit_now()
  ffi.C.clock_gettime(1, kit_ts)
  return tonumber(kit_ts.tv_sec) + tonumber(kit_ts.tv_nsec) * 1e-9
end

-- Per thread: status counts and the first send / last answer (set by scripts that count).
kit_status = {}
kit_first = 0
kit_last = 0

local kit_threads = {}
local kit_next_id = 0

function setup(thread)
  thread:set("kit_tid", kit_next_id)
  kit_next_id = kit_next_id + 1
  table.insert(kit_threads, thread)
end

local function kit_json_object(t)
  local parts = {}
  for k, v in pairs(t) do
    table.insert(parts, string.format("\"%s\":%d", tostring(k), v))
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

function done(summary, latency, requests)
  local status, first, last, parked = {}, nil, 0, 0
  for _, thread in ipairs(kit_threads) do
    local counts = thread:get("kit_status") or {}
    for code, n in pairs(counts) do
      status[code] = (status[code] or 0) + n
    end
    parked = parked + (thread:get("kit_parked_408") or 0)
    local f, l = thread:get("kit_first") or 0, thread:get("kit_last") or 0
    if f > 0 and (first == nil or f < first) then first = f end
    if l > last then last = l end
  end
  local window = 0
  if first ~= nil and last > first then window = last - first end
  local e = summary.errors
  io.write(string.format(
    "KIT-JSON {\"requests\":%d,\"parked_408\":%d,\"duration_us\":%d,\"window_s\":%.6f," ..
    "\"errors\":{\"connect\":%d,\"read\":%d,\"write\":%d,\"status\":%d,\"timeout\":%d}," ..
    "\"latency_us\":{\"p50\":%d,\"p90\":%d,\"p99\":%d,\"p999\":%d,\"max\":%d,\"mean\":%.1f}," ..
    "\"status\":%s}\n",
    summary.requests, parked, summary.duration, window,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean,
    kit_json_object(status)))
end
