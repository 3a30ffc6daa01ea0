-- Argo CD health check for appstack.dev/AppStack, from its status as the operator writes it
-- (kstatus conditions Ready, Reconciling, Stalled and status.phase):
--   Ready=True                                   -> Healthy
--   Stalled=True, or phase Degraded or Failed    -> Degraded, with the condition's message
--   anything else (Reconciling, Pending, ...)    -> Progressing, with the Ready message
-- A status older than the spec (observedGeneration behind metadata.generation) is Progressing:
-- the operator has not looked at the latest spec yet.
-- Install: the argocd-cm key resource.customizations.health.appstack.dev_AppStack (see
-- deploy/gitops/argocd-cm.yaml). Argo CD runs it without Lua's string library: none is used.
local hs = {}

local function condition(conditions, wanted)
  for _, c in ipairs(conditions or {}) do
    if c.type == wanted then
      return c
    end
  end
  return nil
end

local function say(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  if c ~= nil and c.reason ~= nil then
    return c.reason
  end
  return fallback
end

local status = obj.status
if status == nil or status.conditions == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report the stack's status"
  return hs
end

local generation = obj.metadata.generation
local observed = status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to reconcile generation " .. generation
  return hs
end

local ready = condition(status.conditions, "Ready")
local stalled = condition(status.conditions, "Stalled")

if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = say(stalled, "Stalled")
  return hs
end
if status.phase == "Degraded" or status.phase == "Failed" then
  hs.status = "Degraded"
  hs.message = say(ready, status.phase)
  return hs
end
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = say(ready, "Ready")
  return hs
end
hs.status = "Progressing"
hs.message = say(ready, "Reconciling")
return hs
