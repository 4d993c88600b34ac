package gatehouse.authz_test

import data.gatehouse.authz

test_anonymous_denied if {
	not authz.allow with input as {"principal": {"kind": "anonymous", "scopes": []}}
}

test_admin_allowed if {
	authz.allow with input as {"principal": {"kind": "api_key", "scopes": ["admin"]}}
}
