-- wrk script: GET /v1/discovery as many different people, at several page depths.
-- REQUESTS names a file of "access_token<TAB>cursor" lines (cursor empty for a first page).
local lines = {}
for line in io.lines(os.getenv("REQUESTS")) do
  local token, cursor = line:match("^([^\t]+)\t?(.*)$")
  lines[#lines + 1] = { token = token, cursor = cursor }
end
math.randomseed(os.time())
local limit = os.getenv("LIMIT") or "20"

request = function()
  local pick = lines[math.random(#lines)]
  local path = "/v1/discovery?limit=" .. limit
  if pick.cursor ~= nil and pick.cursor ~= "" then
    path = path .. "&cursor=" .. pick.cursor
  end
  return wrk.format("GET", path, { ["Authorization"] = "Bearer " .. pick.token })
end

local errors = 0
response = function(status, headers, body)
  if status ~= 200 then
    errors = errors + 1
    if errors <= 3 then io.stderr:write("status " .. status .. ": " .. body:sub(1, 200) .. "\n") end
  end
end
