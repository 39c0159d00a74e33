-- A steady crowd for wrk: each connection waits BENCH_PAUSE_MS between its requests, so
-- `connections * 1000 / BENCH_PAUSE_MS` requests a second arrive in all (0: flat out).
local pause = tonumber(os.getenv("BENCH_PAUSE_MS")) or 0

function delay()
  return pause
end
