-- Runs deploy/argocd/grafanacluster-health.lua the way Argo CD does (the object as the
-- global `obj` in a sandbox without io/os, the returned table read as hs.status and
-- hs.message) and checks the verdict.
--
--   lua5.4 argocd_health_test.lua HEALTH.lua OBJECT.json EXPECTED_STATUS [MESSAGE_PART]
--       OBJECT.json: one GrafanaCluster as `kubectl get gfc NAME -o json` prints it.
--       Prints "STATUS: message"; exits 1 when the status is not EXPECTED_STATUS or the
--       message does not contain MESSAGE_PART.
--   lua5.4 argocd_health_test.lua HEALTH.lua --self-test
--       Edge cases on hand-written objects; prints "argocd_health: N passed, N failed".
--
-- Runs on Lua 5.1 (what Argo CD's gopher-lua implements) and 5.4.

-- A small JSON decoder (objects, arrays, strings with escapes, numbers, literals). null
-- becomes nil, as in Argo CD's conversion of the object.
local function json_decode(text)
  local pos = 1

  local function fail(what)
    error(string.format("JSON: %s at byte %d", what, pos), 0)
  end

  local function skip_space()
    pos = string.find(text, "[^ \t\r\n]", pos) or (#text + 1)
  end

  local function utf8_char(code)
    if code < 0x80 then
      return string.char(code)
    elseif code < 0x800 then
      return string.char(0xC0 + math.floor(code / 0x40), 0x80 + code % 0x40)
    elseif code < 0x10000 then
      return string.char(0xE0 + math.floor(code / 0x1000), 0x80 + math.floor(code / 0x40) % 0x40,
        0x80 + code % 0x40)
    end
    return string.char(0xF0 + math.floor(code / 0x40000), 0x80 + math.floor(code / 0x1000) % 0x40,
      0x80 + math.floor(code / 0x40) % 0x40, 0x80 + code % 0x40)
  end

  local escapes = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n",
    r = "\r", t = "\t" }

  local value

  local function read_string()
    pos = pos + 1 -- opening quote
    local parts = {}
    while true do
      local stop = string.find(text, '["\\]', pos)
      if stop == nil then fail("unterminated string") end
      table.insert(parts, string.sub(text, pos, stop - 1))
      pos = stop + 1
      if string.sub(text, stop, stop) == '"' then break end
      local e = string.sub(text, pos, pos)
      if e == "u" then
        local code = tonumber(string.sub(text, pos + 1, pos + 4), 16)
        if code == nil then fail("bad \\u escape") end
        pos = pos + 5
        if code >= 0xD800 and code <= 0xDBFF and string.sub(text, pos, pos + 1) == "\\u" then
          local low = tonumber(string.sub(text, pos + 2, pos + 5), 16)
          if low ~= nil and low >= 0xDC00 and low <= 0xDFFF then
            code = 0x10000 + (code - 0xD800) * 0x400 + (low - 0xDC00)
            pos = pos + 6
          end
        end
        table.insert(parts, utf8_char(code))
      elseif escapes[e] ~= nil then
        table.insert(parts, escapes[e])
        pos = pos + 1
      else
        fail("bad escape")
      end
    end
    return table.concat(parts)
  end

  local function read_number()
    local s, e = string.find(text, "^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
    if s == nil then fail("bad number") end
    local n = tonumber(string.sub(text, s, e))
    if n == nil then fail("bad number") end
    pos = e + 1
    return n
  end

  local literals = { ["true"] = true, ["false"] = false }

  value = function()
    skip_space()
    local c = string.sub(text, pos, pos)
    if c == "{" then
      pos = pos + 1
      local object = {}
      skip_space()
      if string.sub(text, pos, pos) == "}" then
        pos = pos + 1
        return object
      end
      while true do
        skip_space()
        if string.sub(text, pos, pos) ~= '"' then fail("expected a key") end
        local key = read_string()
        skip_space()
        if string.sub(text, pos, pos) ~= ":" then fail("expected ':'") end
        pos = pos + 1
        object[key] = value()
        skip_space()
        local sep = string.sub(text, pos, pos)
        pos = pos + 1
        if sep == "}" then return object end
        if sep ~= "," then fail("expected ',' or '}'") end
      end
    elseif c == "[" then
      pos = pos + 1
      local array = {}
      skip_space()
      if string.sub(text, pos, pos) == "]" then
        pos = pos + 1
        return array
      end
      while true do
        table.insert(array, value())
        skip_space()
        local sep = string.sub(text, pos, pos)
        pos = pos + 1
        if sep == "]" then return array end
        if sep ~= "," then fail("expected ',' or ']'") end
      end
    elseif c == '"' then
      return read_string()
    elseif c == "-" or string.find(c, "%d") then
      return read_number()
    end
    for word, v in pairs(literals) do
      if string.sub(text, pos, pos + #word - 1) == word then
        pos = pos + #word
        return v
      end
    end
    if string.sub(text, pos, pos + 3) == "null" then
      pos = pos + 4
      return nil
    end
    fail("unexpected character '" .. c .. "'")
  end

  local result = value()
  skip_space()
  if pos <= #text then fail("trailing data") end
  return result
end

local function read_file(path)
  local f, err = io.open(path, "rb")
  if f == nil then error(err, 0) end
  local text = f:read("*a")
  f:close()
  return text
end

-- Compiles the health script in an environment like Argo CD's for a user-defined check
-- (argocd-cm without useOpenLibs): base functions and the table library only, `obj` as a
-- global. Argo CD also opens a reduced os library; no string, math or io.
local function evaluate(source, object)
  local env = {
    obj = object,
    ipairs = ipairs, pairs = pairs, next = next, type = type, tostring = tostring,
    tonumber = tonumber, select = select, error = error, pcall = pcall,
    table = table,
  }
  local chunk, err
  if setfenv ~= nil then -- Lua 5.1
    chunk, err = loadstring(source, "=health")
    if chunk ~= nil then setfenv(chunk, env) end
  else
    chunk, err = load(source, "=health", "t", env)
  end
  if chunk == nil then error("health script does not compile: " .. err, 0) end
  local ok, hs = pcall(chunk)
  if not ok then error("health script failed: " .. tostring(hs), 0) end
  if type(hs) ~= "table" or type(hs.status) ~= "string" then
    error("health script returned no hs.status", 0)
  end
  return hs
end

local valid = { Healthy = true, Progressing = true, Degraded = true, Suspended = true }

-- Edge cases the real objects of the chart test do not show.
local function self_test(source)
  local function cond(type_, status, reason, message)
    return { type = type_, status = status, reason = reason, message = message }
  end
  local cases = {
    { name = "no status yet", want = "Progressing",
      obj = { metadata = { generation = 1 } } },
    { name = "status without observedGeneration", want = "Progressing",
      obj = { metadata = { generation = 1 }, status = { conditions = {
        cond("Ready", "True", "Available", "3 of 3 replicas ready") } } } },
    { name = "stale Ready status", want = "Progressing", part = "generation 3",
      obj = { metadata = { generation = 3 }, status = { observedGeneration = 2, conditions = {
        cond("Ready", "True", "Available", "3 of 3 replicas ready"),
        cond("Degraded", "False", "AsExpected", "no problem found") } } } },
    { name = "ready", want = "Healthy", part = "3 of 3 replicas ready",
      obj = { metadata = { generation = 2 }, status = { observedGeneration = 2, conditions = {
        cond("Ready", "True", "Available", "3 of 3 replicas ready"),
        cond("Progressing", "False", "RolloutComplete", "done"),
        cond("Degraded", "False", "AsExpected", "no problem found") } } } },
    { name = "rolling out", want = "Progressing", part = "RollingOut",
      obj = { metadata = { generation = 2 }, status = { observedGeneration = 2, conditions = {
        cond("Ready", "False", "RollingOut", "1 of 3 replicas updated"),
        cond("Progressing", "True", "RollingOut", "1 of 3 replicas updated, 1 available"),
        cond("Degraded", "False", "AsExpected", "no problem found") } } } },
    { name = "invalid spec", want = "Degraded", part = "InvalidSpec",
      obj = { metadata = { generation = 1 }, status = { observedGeneration = 1, conditions = {
        cond("Ready", "False", "InvalidSpec", "spec.replicas: must be at least 1"),
        cond("Progressing", "False", "InvalidSpec", "fix the spec to continue"),
        cond("Degraded", "True", "InvalidSpec", "spec.replicas: must be at least 1") } } } },
    { name = "last known configuration, still ready", want = "Degraded",
      part = "CacheResolved is AwsThrottled",
      obj = { metadata = { generation = 1 }, status = { observedGeneration = 1, conditions = {
        cond("Ready", "True", "Available", "3 of 3 replicas ready"),
        cond("DatabaseResolved", "True", "Found", "db"),
        cond("CacheResolved", "False", "AwsThrottled", "rate exceeded"),
        cond("Degraded", "True", "UsingLastKnownConfiguration", "running on the last good configuration") } } } },
    { name = "waiting, nothing degraded", want = "Progressing", part = "Waiting",
      obj = { metadata = { generation = 1 }, status = { observedGeneration = 1, conditions = {
        cond("Ready", "False", "Waiting", "waiting for StorageResolved") } } } },
  }
  local passed, failed = 0, 0
  for _, case in ipairs(cases) do
    local ok, hs = pcall(evaluate, source, case.obj)
    local good = ok and hs.status == case.want and valid[hs.status]
      and (case.part == nil or string.find(hs.message or "", case.part, 1, true) ~= nil)
    if good then
      passed = passed + 1
      print(string.format("ok   %-40s %s: %s", case.name, hs.status, hs.message))
    else
      failed = failed + 1
      local got = ok and (hs.status .. ": " .. tostring(hs.message)) or tostring(hs)
      print(string.format("FAIL %-40s want %s%s, got %s", case.name, case.want,
        case.part and (" containing '" .. case.part .. "'") or "", got))
    end
  end
  print(string.format("argocd_health: %d passed, %d failed", passed, failed))
  return failed == 0
end

local script, target, want, part = arg[1], arg[2], arg[3], arg[4]
if script == nil or target == nil or (target ~= "--self-test" and want == nil) then
  io.stderr:write("usage: argocd_health_test.lua HEALTH.lua (OBJECT.json EXPECTED [MESSAGE_PART] | --self-test)\n")
  os.exit(2)
end
local source = read_file(script)
if target == "--self-test" then
  os.exit(self_test(source) and 0 or 1)
end
local ok, result = pcall(function()
  return evaluate(source, json_decode(read_file(target)))
end)
if not ok then
  print("ERROR: " .. tostring(result))
  os.exit(1)
end
print(result.status .. ": " .. tostring(result.message))
if result.status ~= want or not valid[result.status] then
  print("expected " .. want)
  os.exit(1)
end
if part ~= nil and string.find(result.message or "", part, 1, true) == nil then
  print("expected the message to contain '" .. part .. "'")
  os.exit(1)
end
os.exit(0)
