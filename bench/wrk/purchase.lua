-- A purchase flood for wrk: every request a distinct buyer, in order, each buyer once per
-- pass. Buyer i's token is line i of the file named by BENCH_TOKENS; with BENCH_PATHS (a file
-- of paths, one per line) buyer i goes to path i mod n, else every buyer to the URL's path; the buyer's index
-- rides in x-request-id (the node echoes it), so each answer is matched to its buyer without
-- knowing which connection carried it. Set BENCH_RECORD=1 to record answers (status counts,
-- the order id of every 2xx with its buyer, and the buyers definitely refused); without it wrk runs without Lua per answer.

local ffi = require("ffi")
ffi.cdef([[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clock, bench_timespec *now);
]])
local timespec = ffi.new("bench_timespec")
-- Wall-clock milliseconds (CLOCK_REALTIME), comparable with the driver's Date.now().
local function now_ms()
  ffi.C.clock_gettime(0, timespec)
  return tonumber(timespec.tv_sec) * 1000 + tonumber(timespec.tv_nsec) / 1e6
end

local tokens = {}
local threads = {}
local thread_count = 0

function setup(thread)
  thread:set("thread_index", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

function init(args)
  local file = assert(io.open(os.getenv("BENCH_TOKENS"), "r"))
  for line in file:lines() do
    tokens[#tokens + 1] = line
  end
  file:close()
  paths = {}
  local paths_file = os.getenv("BENCH_PATHS")
  if paths_file and paths_file ~= "" then
    local listed = assert(io.open(paths_file, "r"))
    for line in listed:lines() do
      paths[#paths + 1] = line
    end
    listed:close()
  end
  if #paths == 0 then
    paths[1] = wrk.path
  end
  thread_total = tonumber(os.getenv("BENCH_STRIDE"))
  next_buyer = tonumber(os.getenv("BENCH_FIRST")) + thread_index
  statuses = {}
  confirmed = {}
  refused = {}
  purchased = 0
  last_purchase_ms = 0
end

-- Threads take interleaved buyers (first, first + stride, …), so no two threads, nor two wrk
-- processes sharing the tokens (BENCH_FIRST, BENCH_STRIDE), send the same buyer.
function request()
  local i = next_buyer % #tokens
  next_buyer = next_buyer + thread_total
  return wrk.format("POST", paths[(i % #paths) + 1], {
    ["content-type"] = "application/json",
    ["authorization"] = "Bearer " .. tokens[i + 1],
    ["x-request-id"] = "b" .. i
  }, '{"quantity":1}')
end

if os.getenv("BENCH_RECORD") == "1" then
  function response(status, headers, body)
    statuses[status] = (statuses[status] or 0) + 1
    if status == 201 then
      purchased = purchased + 1
      last_purchase_ms = now_ms()
    end
    if status >= 400 and status < 500 and status ~= 408 and status ~= 429 then
      local buyer = headers["x-request-id"] or headers["X-Request-Id"]
      if buyer then
        refused[#refused + 1] = tonumber(string.sub(buyer, 2))
      end
    elseif status >= 200 and status < 300 then
      local order = string.match(body, '"orderId":"([^"]+)"')
      local buyer = headers["x-request-id"] or headers["X-Request-Id"]
      if order and buyer then
        confirmed[#confirmed + 1] = buyer .. " " .. status .. " " .. order
      end
    end
  end
end

-- One JSON line per thread, then the latency distribution in microseconds.
function done(summary, latency, requests)
  for _, thread in ipairs(threads) do
    local parts = {}
    for status, n in pairs(thread:get("statuses")) do
      parts[#parts + 1] = '"' .. status .. '":' .. n
    end
    local orders = {}
    for _, line in ipairs(thread:get("confirmed")) do
      orders[#orders + 1] = '"' .. line .. '"'
    end
    io.write(string.format('THREAD {"purchased":%d,"lastPurchaseMs":%.3f,"statuses":{%s},"confirmed":[%s],"refused":[%s]}\n',
      thread:get("purchased"), thread:get("last_purchase_ms"), table.concat(parts, ","), table.concat(orders, ","),
      table.concat(thread:get("refused"), ",")))
  end
  -- wrk's own CPU time (all its threads), from /proc: fields 14 and 15 are user and system ticks.
  local stat = io.open("/proc/self/stat", "r")
  local fields = {}
  for field in string.gmatch(stat:read("*a"):gsub("^.*%) ", ""), "%S+") do
    fields[#fields + 1] = field
  end
  stat:close()
  io.write(string.format('CPU {"ticks":%d}\n', tonumber(fields[12]) + tonumber(fields[13])))
  io.write(string.format(
    'SUMMARY {"requests":%d,"durationMicros":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d,"mean":%.1f}\n',
    summary.requests, summary.duration, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max, latency.mean))
end
