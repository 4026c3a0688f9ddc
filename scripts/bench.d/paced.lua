-- wrk script for scripts/bench: static.lua's request and summary, but each connection waits
-- 1 ms after every response before it sends the next request, so `-c N` offers about
-- N × 1000 requests/s (less the response time): plain NGINX at the request rate of a slower
-- scenario, whose kernel cost per request (one wake-up per response) it then pays too.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "static.lua")

delay = function()
  return 1
end
