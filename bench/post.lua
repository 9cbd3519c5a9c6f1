-- wrk: POST a fixed JSON body (BODY env var) to the given path.
wrk.method = "POST"
wrk.body = os.getenv("BODY")
wrk.headers["Content-Type"] = "application/json"
