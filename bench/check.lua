-- wrk script for bench/run's instant-upload row: each request is a check
-- (POST /api/v1/uploads) for a file the server already holds, picked at
-- random from the "HASH SIZE" lines of the file named by BENCH_SEEDS.
-- Any answer but 200 is counted and makes bench/run fail.
local seeds = {}
for line in io.lines(os.getenv("BENCH_SEEDS")) do
  local hash, size = line:match("(%S+) (%d+)")
  seeds[#seeds + 1] = string.format(
    '{"name":"check.txt","size":%s,"hash":"%s"}', size, hash)
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

bad = 0 -- per thread (each has its own Lua state); summed in done()
function init() math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16)) end
function request() return wrk.format(nil, nil, nil, seeds[math.random(#seeds)]) end
function response(status) if status ~= 200 then bad = bad + 1 end end

local threads = {}
function setup(thread) threads[#threads + 1] = thread end
function done(summary, latency)
  local total = 0
  for _, t in ipairs(threads) do total = total + t:get("bad") end
  io.write(string.format("p50_ms %.3f\np99_ms %.3f\nrequests %d\nbad %d\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, summary.requests, total))
end
