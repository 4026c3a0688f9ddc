-- wrk script for scripts/bench.d/dpop.sh (run with -t1): each request carries the next
-- one-use DPoP proof; with BENCH_SCHEME=Bearer the same token as a bearer token and no
-- proof; with BENCH_SCHEME=es256 or hs256 the next of N distinct bearer tokens (each a cache
-- miss). The thread stops once every line is sent, so no proof is ever replayed.
local dir = os.getenv("BENCH_DIR")
local token = io.open(dir .. "/token.txt"):read("*a")
local scheme = os.getenv("BENCH_SCHEME")
local bearer = scheme ~= "DPoP"
local fresh = scheme == "es256" or scheme == "hs256"
local proofs = {}
for line in io.lines(dir .. "/" .. (fresh and scheme or "proofs") .. ".txt") do proofs[#proofs + 1] = line end
local i, non200 = 0, 0

request = function()
  i = i + 1
  if i > #proofs then
    wrk.thread:stop()
    i = #proofs
  end
  if fresh then
    return wrk.format("GET", "/bearer/", { Authorization = "Bearer " .. proofs[i] })
  end
  if bearer then
    return wrk.format("GET", "/bearer/", { Authorization = "Bearer " .. token })
  end
  return wrk.format("GET", "/dpop/", { Authorization = "DPoP " .. token, DPoP = proofs[i] })
end

response = function(status)
  if status ~= 200 then non200 = non200 + 1 end
end

done = function(summary)
  io.write(string.format("BENCH requests=%d duration_us=%d\n", summary.requests, summary.duration))
end
