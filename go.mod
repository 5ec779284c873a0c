module github.com/gatehouse-ai/gatehouse

go 1.26.0

require gopkg.in/yaml.v3 v3.0.1

require (
	github.com/gatehouse-ai/gatehouse/pkg v0.0.0-00010101000000-000000000000
	github.com/gatehouse-ai/gatehouse/services/authz v0.0.0-00010101000000-000000000000
	github.com/gatehouse-ai/gatehouse/services/cache v0.0.0-00010101000000-000000000000
	github.com/gatehouse-ai/gatehouse/services/chat v0.0.0-00010101000000-000000000000
	github.com/gatehouse-ai/gatehouse/services/edge v0.0.0-00010101000000-000000000000
	github.com/gatehouse-ai/gatehouse/services/meter v0.0.0-00010101000000-000000000000
)

require (
	github.com/coder/websocket v1.8.15 // indirect
	github.com/dustin/go-humanize v1.1.0 // indirect
	github.com/golang-jwt/jwt/v5 v5.3.1 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/jackc/pgpassfile v1.0.0 // indirect
	github.com/jackc/pgservicefile v0.0.0-20240606120523-5a60cdf6a761 // indirect
	github.com/jackc/pgx/v5 v5.12.0 // indirect
	github.com/mattn/go-isatty v0.0.24 // indirect
	github.com/ncruces/go-strftime v1.1.0 // indirect
	github.com/openai/openai-go/v3 v3.98.0 // indirect
	github.com/remyoudompheng/bigfft v0.0.0-20230129092748-24d4a6f8daec // indirect
	github.com/tidwall/gjson v1.20.0 // indirect
	github.com/tidwall/match v1.1.1 // indirect
	github.com/tidwall/pretty v1.2.1 // indirect
	github.com/tidwall/sjson v1.2.5 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/text v0.43.0 // indirect
	modernc.org/libc v1.80.1 // indirect
	modernc.org/mathutil v1.7.1 // indirect
	modernc.org/memory v1.12.1 // indirect
	modernc.org/sqlite v1.62.0 // indirect
)

replace (
	github.com/gatehouse-ai/gatehouse/pkg => ./pkg
	github.com/gatehouse-ai/gatehouse/services/authz => ./services/authz
	github.com/gatehouse-ai/gatehouse/services/cache => ./services/cache
	github.com/gatehouse-ai/gatehouse/services/chat => ./services/chat
	github.com/gatehouse-ai/gatehouse/services/edge => ./services/edge
	github.com/gatehouse-ai/gatehouse/services/meter => ./services/meter
)
