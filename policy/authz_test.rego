package gatehouse.authz_test

import data.gatehouse.authz

route_input(scopes, route) := {
	"principal": {"id": "k1", "kind": "api_key", "scopes": scopes, "tier": ""},
	"request": {"method": "GET", "path": "/api/v1/signals/x", "segments": ["api", "v1", "signals", "x"]},
	"route": route,
	"action": "http.request",
	"resource": "",
	"mode": "prod",
}

signals := {"name": "signals-read", "scopes": ["read:signals"], "tool": ""}

search_tool := {"name": "search", "scopes": ["agents"], "tool": "web_search"}

debug_route := {"name": "pprof", "scopes": ["debug"], "tool": ""}

tool_input(scopes, resource) := {
	"principal": {"id": "c1", "kind": "client", "scopes": scopes},
	"request": {"method": "POST", "path": "/v1/authorize"},
	"route": null,
	"action": "tool.execute",
	"resource": resource,
	"mode": "prod",
}

test_route_scopes_held if {
	authz.allow with input as route_input(["read:signals"], signals)
	"route signals-read: required scopes held" in authz.reasons with input as route_input(["read:signals"], signals)
}

test_route_scope_missing if {
	not authz.allow with input as route_input(["write:signals"], signals)
	authz.reasons == {"missing scope read:signals"} with input as route_input(["write:signals"], signals)
}

test_route_all_scopes_required if {
	route := {"name": "r", "scopes": ["a", "b"], "tool": ""}
	not authz.allow with input as route_input(["a"], route)
	authz.allow with input as route_input(["b", "a"], route)
}

test_route_without_scopes if {
	authz.allow with input as route_input([], {"name": "open", "scopes": [], "tool": ""})
}

test_empty_action_is_route_request if {
	inp := object.remove(route_input(["read:signals"], signals), ["action"])
	authz.allow with input as inp
}

test_no_route_denied if {
	not authz.allow with input as route_input(["read:signals"], null)
	authz.reasons == {"no route matched"} with input as route_input(["read:signals"], null)
}

test_admin_allows_everything if {
	authz.allow with input as route_input(["admin"], signals)
	authz.allow with input as route_input(["admin"], search_tool)
	authz.allow with input as route_input(["admin"], debug_route)
	authz.allow with input as tool_input(["admin"], "tool:rm_rf")
	authz.reasons == {"admin scope grants every permission"} with input as tool_input(["admin"], "tool:x")
}

test_debug_only_in_dev if {
	not authz.allow with input as route_input(["debug"], debug_route)
	"scope debug is honoured only in dev mode" in authz.reasons with input as route_input(["debug"], debug_route)
	authz.allow with input as object.union(route_input(["debug"], debug_route), {"mode": "dev"})
}

test_debug_grants_nothing_else_in_dev if {
	not authz.allow with input as object.union(route_input(["debug"], signals), {"mode": "dev"})
}

test_tool_route_needs_tool_scope if {
	not authz.allow with input as route_input(["agents"], search_tool)
	authz.reasons == {"missing scope tools:execute:web_search or tools:execute:*"} with input as route_input(["agents"], search_tool)
	authz.allow with input as route_input(["agents", "tools:execute:web_search"], search_tool)
	authz.allow with input as route_input(["agents", "tools:execute:*"], search_tool)
	not authz.allow with input as route_input(["agents", "tools:execute:other"], search_tool)
	not authz.allow with input as route_input(["tools:execute:*"], search_tool)
}

test_tool_execute_decision if {
	authz.allow with input as tool_input(["tools:execute:web_search"], "tool:web_search")
	authz.allow with input as tool_input(["tools:execute:*"], "tool:web_search")
	not authz.allow with input as tool_input(["tools:execute:web_fetch"], "tool:web_search")
	not authz.allow with input as tool_input([], "tool:web_search")
	authz.reasons == {"missing scope tools:execute:web_search or tools:execute:*"} with input as tool_input([], "tool:web_search")
}

test_tool_execute_bad_resource if {
	not authz.allow with input as tool_input(["tools:execute:*"], "web_search")
	authz.reasons == {`resource "web_search" is not a tool (want tool:NAME)`} with input as tool_input(["tools:execute:*"], "web_search")
	not authz.allow with input as tool_input(["tools:execute:*"], "tool:")
	authz.reasons == {"invalid resource: tool name is empty"} with input as tool_input(["tools:execute:*"], "tool:")
}

test_unknown_action_denied if {
	inp := object.union(tool_input(["tools:execute:*"], "tool:x"), {"action": "keys.delete"})
	not authz.allow with input as inp
	authz.reasons == {"unknown action keys.delete"} with input as inp
}

test_anonymous_denied if {
	inp := {"principal": {"id": "", "kind": "anonymous", "scopes": []}, "route": signals, "action": "http.request", "mode": "prod"}
	not authz.allow with input as inp
}
