-- wrk script for scripts/bench: one request carrying N copies of a header, the same every time.
-- Arguments: N, the header name, and a file whose first line is a token ("-" for none).
local dir = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
dofile(dir .. "static.lua") -- the summary line

init = function(args)
  local n, name, token_file = tonumber(args[1]) or 1800, args[2] or "X-User-Id", args[3]
  local lines = { "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n" }
  if token_file and token_file ~= "-" then
    local f = assert(io.open(token_file))
    lines[#lines + 1] = "Authorization: Bearer " .. f:read("*l") .. "\r\n"
    f:close()
  end
  for _ = 1, n do
    lines[#lines + 1] = name .. ": a\r\n"
  end
  lines[#lines + 1] = "\r\n"
  req = table.concat(lines)
end

request = function()
  return req
end
