module github.com/gatehouse/gatehouse

go 1.26.8

require (
	github.com/oklog/ulid/v2 v2.1.2
	github.com/transparency-dev/merkle v0.0.2
	golang.org/x/mod v0.42.0
)
