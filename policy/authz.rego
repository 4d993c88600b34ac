# Gatehouse default authorization policy.
#
# The gateway asks for data.gatehouse.authz.allow (deny unless true) and
# data.gatehouse.authz.reasons (messages shown in a 403 body and written to
# the audit log). See docs/policy.md for the input document.
package gatehouse.authz

default allow := false

# scopes is the principal's effective scope set: the "debug" scope counts
# only in dev mode.
scopes contains s if {
	some s in input.principal.scopes
	s != "debug"
}

scopes contains "debug" if {
	input.mode == "dev"
	"debug" in input.principal.scopes
}

admin if "admin" in scopes

# action is the requested action; gateway traffic sends "http.request"
# (or nothing).
default action := ""

action := input.action

has_route if is_string(input.route.name)

route_request if {
	action in {"", "http.request"}
	has_route
}

tool_request if action == "tool.execute"

# The admin scope allows everything.
allow if admin

# A route allows a caller holding every scope it requires and, when the
# route runs a tool, a tool-execution scope for it.
allow if {
	route_request
	count(missing_route_scopes) == 0
	route_tool_allowed
}

# A decision request "tool.execute" on "tool:NAME" needs a scope for NAME.
allow if {
	tool_request
	tool_allowed(requested_tool)
}

missing_route_scopes contains s if {
	route_request
	some s in input.route.scopes
	not s in scopes
}

default resource := ""

resource := input.resource

route_tool := object.get(input.route, "tool", "")

route_tool_allowed if route_tool == ""

route_tool_allowed if tool_allowed(route_tool)

requested_tool := trim_prefix(resource, "tool:") if {
	startswith(resource, "tool:")
}

tool_allowed(name) if {
	name != ""
	concat("", ["tools:execute:", name]) in scopes
}

tool_allowed(name) if {
	name != ""
	"tools:execute:*" in scopes
}

# reasons explains the decision: why access was granted, or every reason it
# was refused.
reasons contains "admin scope grants every permission" if admin

reasons contains sprintf("route %s: required scopes held", [input.route.name]) if {
	not admin
	route_request
	count(missing_route_scopes) == 0
	route_tool_allowed
}

reasons contains sprintf("tool %s: execution scope held", [requested_tool]) if {
	not admin
	tool_request
	tool_allowed(requested_tool)
}

reasons contains msg if {
	not allow
	some msg in deny
}

reasons contains "no rule allows this request" if {
	not allow
	count(deny) == 0
}

deny contains sprintf("missing scope %s", [s]) if {
	some s in missing_route_scopes
}

deny contains sprintf("missing scope tools:execute:%s or tools:execute:*", [route_tool]) if {
	route_request
	not route_tool_allowed
}

deny contains sprintf("missing scope tools:execute:%s or tools:execute:*", [requested_tool]) if {
	tool_request
	requested_tool != ""
	not tool_allowed(requested_tool)
}

deny contains sprintf("resource %q is not a tool (want tool:NAME)", [resource]) if {
	tool_request
	not requested_tool
}

deny contains "invalid resource: tool name is empty" if {
	tool_request
	requested_tool == ""
}

deny contains "scope debug is honoured only in dev mode" if {
	input.mode != "dev"
	"debug" in input.principal.scopes
	"debug" in missing_route_scopes
}

deny contains sprintf("unknown action %s", [action]) if {
	not action in {"", "http.request", "tool.execute"}
}

deny contains "no route matched" if {
	action in {"", "http.request"}
	not has_route
}
