package gatehouse.authz

# Deliberately wrong: lets everyone in.
default allow := true
