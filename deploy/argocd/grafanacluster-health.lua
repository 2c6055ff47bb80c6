-- Argo CD health check for grafana-ha.io/GrafanaCluster.
--
-- Put it in argocd-cm under resource.customizations.health.grafana-ha.io_GrafanaCluster
-- (deploy/README.md shows the snippet). Argo CD runs it with the live object as `obj`
-- and reads hs.status (Healthy, Progressing, Degraded or Suspended) and hs.message.
--
-- The operator reports metav1 Conditions (src/status.rs): Ready, DatabaseResolved,
-- CacheResolved, StorageResolved, Progressing and Degraded, each with the generation it
-- was computed for, and status.observedGeneration. A status older than the spec says
-- nothing about the spec: until the operator has seen the latest generation, the cluster
-- is Progressing whatever the conditions say. The operator has no pause switch, so
-- Suspended is never reported.
--
-- Written for Lua 5.1 (Argo CD embeds gopher-lua) and for Argo CD's sandbox of
-- user-defined checks, which opens the base functions and the table library only (no
-- string or math library unless useOpenLibs is set): comparisons, `..`, ipairs and
-- tostring. Tested with lua5.1 and lua5.4 in that sandbox (testbed/chart/).

local hs = {
  status = "Progressing",
  message = "Waiting for the operator to report the cluster's status",
}

local function find_condition(conditions, wanted)
  for _, c in ipairs(conditions) do
    if c.type == wanted then
      return c
    end
  end
  return nil
end

-- "Reason: message", or whichever of the two is there.
local function describe(c)
  local reason = c.reason or ""
  local message = c.message or ""
  if reason ~= "" and message ~= "" then
    return reason .. ": " .. message
  end
  if reason ~= "" then
    return reason
  end
  return message
end

-- The first AWS resource that could not be resolved, e.g. "DatabaseResolved is NotFound: ...".
local function first_unresolved(conditions)
  local types = { "DatabaseResolved", "CacheResolved", "StorageResolved" }
  for _, t in ipairs(types) do
    local c = find_condition(conditions, t)
    if c ~= nil and c.status == "False" then
      return t .. " is " .. describe(c)
    end
  end
  return nil
end

if obj.status == nil or obj.status.conditions == nil then
  return hs
end

local generation = nil
if obj.metadata ~= nil then
  generation = obj.metadata.generation
end
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
    .. " (status is for generation " .. tostring(observed or "none") .. ")"
  return hs
end

local conditions = obj.status.conditions
local degraded = find_condition(conditions, "Degraded")
local ready = find_condition(conditions, "Ready")
local progressing = find_condition(conditions, "Progressing")

if degraded ~= nil and degraded.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(degraded)
  local unresolved = first_unresolved(conditions)
  if unresolved ~= nil then
    hs.message = hs.message .. "; " .. unresolved
  end
  return hs
end

if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready)
  return hs
end

-- Not ready and not degraded: the operator is rolling out, installing plugins or waiting.
if progressing ~= nil and progressing.status == "True" then
  hs.message = describe(progressing)
elseif ready ~= nil then
  hs.message = describe(ready)
end
return hs
