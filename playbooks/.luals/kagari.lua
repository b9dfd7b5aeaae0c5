---@meta
-- The kagari playbook API, for editors with the Lua language server (LuaLS).
-- Written by `kagari playbook annotations`: do not edit, run it again instead.

---@class kagari.observable
---@field type "user"|"ip"|"host"|"device"|"url"|"domain"|"hash"|"email"|"process"
---@field value string
---@field role? string

---@class kagari.alert
---@field id integer the alert's id in this tenant
---@field source string e.g. "entra.signin"
---@field source_id string the source's own id (deduplication key)
---@field time number when it happened (epoch seconds)
---@field time_iso string when it happened (RFC 3339)
---@field received number when kagari accepted it (epoch seconds)
---@field received_iso string
---@field title string
---@field category? string
---@field vendor_severity? string
---@field severity "informational"|"low"|"medium"|"high"|"critical"
---@field severity_level integer 0 (informational) to 4 (critical)
---@field outcome "unknown"|"blocked"|"attempted"|"succeeded"
---@field observables kagari.observable[]
---@field raw table the alert as received
---@field observable fun(self: kagari.alert, type: string): string? the first observable value of that type
---@field values fun(self: kagari.alert, type?: string): table the observable values of that type (every observable table without one)

---The alert source names the registered sources give.
---@alias kagari.source
---| "azure.activity"
---| "azure.appgw"
---| "azure.bastion"
---| "azure.firewall"
---| "azure.waf"
---| "defender.alert"
---| "defender.evidence"
---| "defender.hunting"
---| "defender.incident"
---| "entra.audit"
---| "entra.risk"
---| "entra.riskyuser"
---| "entra.signin"
---| "intune.audit"
---| "intune.device"
---| "mdo.alert"
---| "mdo.email"
---| "mdo.postdelivery"
---| "mdo.urlclick"

---@class kagari.trigger
---@field source? kagari.source|kagari.source[]|string|string[] exact names, or prefixes ending in *
---@field min_severity? "informational"|"low"|"medium"|"high"|"critical"
---@field outcome? string|string[] unknown, blocked, attempted, succeeded

---@class kagari.playbook
---@field name string
---@field description? string
---@field on kagari.trigger
---@field run fun(alert: kagari.alert): any
---@field timeout? number|string
---@field instructions? integer
---@field dry_run? boolean

---@class kagari.alerts
alerts = {}

---Earlier alerts with an observable value: {observable =, type =, since =, source =, limit =}.
---@param query table
---@return table?
---@return string?
function alerts.recent(query) end

---Park the run until people decide: {title =, detail =, effects =, role =, approvers =, timeout =, default =}; the decision {approved =, decision =, timed_out =, ...}.
---@param request table
---@return table
function approve(request) end

---@class kagari.defender
defender = {}

---A machine action.
---@param id string
---@return table?
---@return string?
function defender.action(id) end

---Add an indicator (IP, domain, URL, file hash).
---@param indicator table
---@return table?
---@return string?
function defender.add_indicator(indicator) end

---Run an antivirus scan.
---@param id string
---@param kind? "quick"|"full"
---@param comment? string
---@return table?
---@return string?
function defender.av_scan(id, kind, comment) end

---Collect an investigation package.
---@param id string
---@param comment? string
---@return table?
---@return string?
function defender.collect_package(id, comment) end

---Machines by {host =} or {ip =}.
---@param query table
---@return table?
---@return string?
function defender.find_machine(query) end

---Isolate a machine from the network.
---@param id string
---@param kind? "full"|"selective"
---@param comment? string
---@return table?
---@return string?
function defender.isolate(id, kind, comment) end

---A machine by id or computer name.
---@param id string
---@return table?
---@return string?
function defender.machine(id) end

---Remove an indicator.
---@param id string|integer
---@return table?
---@return string?
function defender.remove_indicator(id) end

---Restrict app execution.
---@param id string
---@param comment? string
---@return table?
---@return string?
function defender.restrict_code(id, comment) end

---Release a machine from isolation.
---@param id string
---@param comment? string
---@return table?
---@return string?
function defender.unisolate(id, comment) end

---Wait for a machine action to finish: {timeout =, interval =}.
---@param id string
---@param opts? table
---@return table?
---@return string?
function defender.wait_action(id, opts) end

---@param ... any
---@return any ...
function escalate(...) end

---@class kagari.events
events = {}

---@param ... any
---@return any ...
function events.count(...) end

---@param ... any
---@return any ...
function events.query(...) end

---@class kagari.graph
graph = {}

---Disable a user account.
---@param id string
---@return true?
---@return string?
function graph.disable_user(id) end

---Enable a user account.
---@param id string
---@return true?
---@return string?
function graph.enable_user(id) end

---Revoke a user's sign-in sessions.
---@param id string
---@return true?
---@return string?
function graph.revoke_sessions(id) end

---Sign-ins: {user =, since =, top =}.
---@param opts? table
---@return table?
---@return string?
function graph.signins(opts) end

---An Entra ID user.
---@param id string
---@return table?
---@return string?
function graph.user(id) end

---@class kagari.http
http = {}

---A JSON HTTP request: {method =, url =, headers =, body =, ...}.
---@param req table
---@return table?
---@return string?
function http.request(req) end

---@class kagari.idp
idp = {}

---Confirm users compromised.
---@param ids string|string[]
---@return true?
---@return string?
function idp.confirm_compromised(ids) end

---Dismiss users' risk.
---@param ids string|string[]
---@return true?
---@return string?
function idp.dismiss(ids) end

---Risk detections: {user =, since =, top =}.
---@param opts? table
---@return table?
---@return string?
function idp.risk_detections(opts) end

---A risky user.
---@param id string
---@return table?
---@return string?
function idp.risky_user(id) end

---@class kagari.intune
intune = {}

---Managed devices by {user =}, {name =} or {aad_id =}.
---@param query table
---@return table?
---@return string?
function intune.device(query) end

---Lock a device.
---@param id string
---@return true?
---@return string?
function intune.remote_lock(id) end

---Retire a device.
---@param id string
---@return true?
---@return string?
function intune.retire(id) end

---Sync a device.
---@param id string
---@return true?
---@return string?
function intune.sync(id) end

---Wipe a device.
---@param id string
---@param opts? table
---@return true?
---@return string?
function intune.wipe(id, opts) end

---@class kagari.json
json = {}

---Mark a table to encode as a JSON array.
---@param t? table
---@return table
function json.array(t) end

---The value of a JSON text, or nil, message.
---@param text string
---@return any
---@return string?
function json.decode(text) end

---The JSON text of a value (sorted keys).
---@param value any
---@return string
function json.encode(value) end

---@type userdata
json.null = nil

---@class kagari.log
log = {}

---Record a line in the run's journal.
---@param ... any
function log.debug(...) end

---Record a line in the run's journal.
---@param ... any
function log.error(...) end

---Record a line in the run's journal.
---@param ... any
function log.info(...) end

---Record a line in the run's journal.
---@param ... any
function log.warn(...) end

---@class kagari.notify
notify = {}

---@param ... any
---@return any ...
function notify.chain(...) end

---@param ... any
---@return any ...
function notify.email(...) end

---@param ... any
---@return any ...
function notify.slack(...) end

---@param ... any
---@return any ...
function notify.teams(...) end

---@param ... any
---@return any ...
function notify.template(...) end

---@param ... any
---@return any ...
function notify.webhook(...) end

---Seconds since the epoch, ms fraction (journaled).
---@return number
function now() end

---@class kagari.panos
panos = {}

---An address object in the candidate configuration: {description =, tags =}.
---@param name string
---@param ip string
---@param opts? table
---@return true?
---@return string?
function panos.add_address(name, ip, opts) end

---Add an address object to a static address group.
---@param group string
---@param name string
---@return true?
---@return string?
function panos.add_to_group(group, name) end

---Block an address or subnet on the firewall (User-ID tag): {tag =, timeout =}.
---@param ip string
---@param opts? table
---@return table?
---@return string?
function panos.block_ip(ip, opts) end

---The firewall's registered addresses with a tag: {tag =} ("*": all).
---@param opts? table
---@return table?
---@return string?
function panos.blocked(opts) end

---Commit the candidate configuration and wait for the job: {description =}.
---@param opts? table
---@return table?
---@return string?
function panos.commit(opts) end

---Delete an address object (absent: success).
---@param name string
---@return true?
---@return string?
function panos.delete_address(name) end

---Remove a block (its tag only): {tag =}.
---@param ip string
---@param opts? table
---@return table?
---@return string?
function panos.unblock_ip(ip, opts) end

---Declare the playbook: the file must end with return playbook{...}.
---@param def kagari.playbook
---@return kagari.playbook
function playbook(def) end

---A library lib/name.lua, evaluated once per playbook version, read-only.
---@param name string
---@return any
function require(name) end

---@class kagari.security
security = {}

---A Defender XDR alert.
---@param id string
---@return table?
---@return string?
function security.alert(id) end

---Comment on an alert.
---@param id string
---@param text string
---@return table?
---@return string?
function security.comment_alert(id, text) end

---A Defender XDR incident ({alerts = true} expands them).
---@param id string
---@param opts? table
---@return table?
---@return string?
function security.incident(id, opts) end

---Update an alert's status, classification, assignment.
---@param id string
---@param fields table
---@return table?
---@return string?
function security.update_alert(id, fields) end

---Update an incident.
---@param id string
---@param fields table
---@return table?
---@return string?
function security.update_incident(id, fields) end

---Park the run for seconds (journaled).
---@param seconds number
---@return true
function sleep(seconds) end

---@class kagari.state
state = {}

---Remove the entry; true when there was one.
---@param key string
---@return boolean
function state.delete(key) end

---The value stored under key, or nil (journaled).
---@param key string
---@return any
---@return string?
function state.get(key) end

---Add by (default 1) to a counter ({window = "1h", by = 1}); the new count.
---@param key string
---@param opts? table
---@return integer?
---@return string?
function state.incr(key, opts) end

---Store a value under key until its ttl ({ttl = "1h"}; default 30 days).
---@param key string
---@param value any
---@param opts? table
---@return true?
---@return string?
function state.put(key, value, opts) end
