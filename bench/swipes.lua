-- wrk script: POST /v1/swipes (passes) from many people on many targets.
-- TOKENS: one access token per line; TARGETS: one user id per line.
local tokens, targets = {}, {}
for line in io.lines(os.getenv("TOKENS")) do tokens[#tokens + 1] = line end
for line in io.lines(os.getenv("TARGETS")) do targets[#targets + 1] = line end
math.randomseed(os.time() + 7)

request = function()
  local token = tokens[math.random(#tokens)]
  local target = targets[math.random(#targets)]
  local body = '{"target_id":"' .. target .. '","action":"pass"}'
  return wrk.format("POST", "/v1/swipes", {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json",
  }, body)
end

local errors = 0
response = function(status, headers, body)
  if status >= 300 and status ~= 404 then
    errors = errors + 1
    if errors <= 3 then io.stderr:write("status " .. status .. ": " .. body:sub(1, 200) .. "\n") end
  end
end
