-- wrk script for scripts/bench: rotates through a file of tokens (one per line, given after
-- `--`), so every request carries another token than the previous ones and no cache can help.
-- Requests are prebuilt in init(), so the client spends no time formatting them.
local reqs = {}
local n = 0
local i = 0
local next_id = 0

setup = function(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
end

init = function(args)
  local path = args[1]
  for line in io.lines(path) do
    if #line > 0 then
      n = n + 1
      reqs[n] = wrk.format("GET", "/", { ["Authorization"] = "Bearer " .. line })
    end
  end
  assert(n > 0, "no tokens in " .. tostring(path))
  -- threads start at different offsets of the list
  i = ((tonumber(id) or 0) * 997) % n
end

request = function()
  i = i % n + 1
  return reqs[i]
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d status=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    e.status, e.connect, e.read, e.write, e.timeout))
end
