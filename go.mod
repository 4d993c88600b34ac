module github.com/gatehouse/gatehouse

go 1.26.8
