-- wrk script for scripts/bench.d/dpop.sh (run with -t1): each request carries the next
-- one-use DPoP proof, or with BENCH_SCHEME=Bearer the same token as a bearer token and no
-- proof; the thread stops once every proof is sent, so no proof is ever replayed.
local dir = os.getenv("BENCH_DIR")
local token = io.open(dir .. "/token.txt"):read("*a")
local bearer = os.getenv("BENCH_SCHEME") == "Bearer"
local proofs = {}
for line in io.lines(dir .. "/proofs.txt") do proofs[#proofs + 1] = line end
local i, non200 = 0, 0

request = function()
  i = i + 1
  if i > #proofs then
    wrk.thread:stop()
    i = #proofs
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
