-- wrk script of bench/serve_soak.sh: good images mixed with bad requests
-- (1 in 4): a corrupt JPEG, an empty body, a wrong content type, an unknown
-- model. Statuses are counted by the server's /metrics.
local f = assert(io.open(os.getenv("SERVE_IMAGE"), "rb"))
local good = f:read("*a")
f:close()
local path = os.getenv("SERVE_PATH")
local n = 0
request = function()
  n = n + 1
  local k = n % 16
  if k == 1 then
    return wrk.format("POST", path, {["Content-Type"] = "image/jpeg"}, string.sub(good, 1, 600))
  elseif k == 5 then
    return wrk.format("POST", path, {["Content-Type"] = "image/jpeg"}, "")
  elseif k == 9 then
    return wrk.format("POST", path, {["Content-Type"] = "text/plain"}, good)
  elseif k == 13 then
    return wrk.format("POST", "/v1/models/nope/predict", {["Content-Type"] = "image/jpeg"}, good)
  end
  return wrk.format("POST", path, {["Content-Type"] = "image/jpeg"}, good)
end
