module github.com/gatehouse-ai/gatehouse

go 1.26
