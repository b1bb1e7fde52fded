-- wrk script of bench/serve.sh: POST the image file $SERVE_IMAGE as the body.
local f = assert(io.open(os.getenv("SERVE_IMAGE"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "image/jpeg"
