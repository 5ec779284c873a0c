module github.com/gatehouse-ai/gatehouse/services/authz

go 1.26

require github.com/gatehouse-ai/gatehouse/pkg v0.0.0-00010101000000-000000000000

replace github.com/gatehouse-ai/gatehouse/pkg => ../../pkg
