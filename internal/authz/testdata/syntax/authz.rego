package gatehouse.authz

allow if {
	input.mode ==
}
