-- Argo CD health check for kstreams.dev/StreamApp (register it in argocd-cm as
-- resource.customizations.health.kstreams.dev_StreamApp; see docs/operations.md).
--
--   Suspended    ReconciliationPaused=True (spec.paused: the operator leaves the app alone),
--                or Suspended=True (spec.suspend: 0 instances, state kept)
--   Degraded     Degraded=True (a problem outside the spec: missing Secret, unschedulable pods...),
--                or Resetting=False with reason ResetFailed or ResetRefused (spec.reset not done)
--   Healthy      Ready=True, written for the current metadata.generation
--   Progressing  anything else: not yet observed, rolling out, scaling, instances not ready
local hs = { status = "Progressing", message = "Waiting for the operator to report status" }

local function find(conditions, type_)
  for _, c in ipairs(conditions) do
    if c.type == type_ then
      return c
    end
  end
  return nil
end

if obj.status == nil or obj.status.conditions == nil then
  return hs
end
local conditions = obj.status.conditions
local generation = obj.metadata.generation

-- A condition describes the current spec when its observedGeneration (or the status') is the
-- object's generation.
local function current(c)
  local observed = c.observedGeneration or obj.status.observedGeneration
  return generation == nil or observed == generation
end

local paused = find(conditions, "ReconciliationPaused")
if paused ~= nil and paused.status == "True" then
  hs.status = "Suspended"
  hs.message = paused.message or "Reconciliation paused"
  return hs
end

local suspended = find(conditions, "Suspended")
if suspended ~= nil and suspended.status == "True" and current(suspended) then
  hs.status = "Suspended"
  hs.message = suspended.message or "Suspended"
  return hs
end

local resetting = find(conditions, "Resetting")
if resetting ~= nil and resetting.status == "False" and current(resetting)
    and (resetting.reason == "ResetFailed" or resetting.reason == "ResetRefused") then
  hs.status = "Degraded"
  hs.message = resetting.reason .. ": " .. (resetting.message or "")
  return hs
end

local degraded = find(conditions, "Degraded")
if degraded ~= nil and degraded.status == "True" then
  hs.status = "Degraded"
  hs.message = (degraded.reason or "Degraded") .. ": " .. (degraded.message or "")
  return hs
end

local ready = find(conditions, "Ready")
if ready ~= nil and ready.status == "True" and current(ready)
    and (obj.status.observedGeneration == nil or obj.status.observedGeneration == generation) then
  hs.status = "Healthy"
  hs.message = ready.message or "Ready"
  return hs
end

if ready ~= nil and current(ready) then
  hs.message = (ready.reason or "NotReady") .. ": " .. (ready.message or "")
elseif generation ~= nil then
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
end
return hs
