package gateway

import "context"

// SourceIPFromContext returns the client address the gateway uses for the
// request carrying ctx (for rate limits, lockouts and audit), or "".
func SourceIPFromContext(ctx context.Context) string {
	if ex := exchangeFrom(ctx); ex != nil {
		return ex.sourceIP
	}
	return ""
}
