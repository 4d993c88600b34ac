package redact

import (
	"context"
	"log/slog"
)

// Handler is an slog.Handler that redacts records before passing them on:
// the message, every string attribute value (inside groups too), error
// values (as their redacted text), and the whole string value of any
// attribute whose key names a secret under the json_secret rules
// ("password", "api_key", "client_secret", …). Other values (structs,
// maps, byte slices) pass through unchanged; to cover those as well, give
// the handler's output writer a [Writer] instead, which sees the final
// bytes:
//
//	slog.New(slog.NewJSONHandler(redactor.Writer(os.Stdout), nil))
//
// A Handler is safe for concurrent use if next is.
type Handler struct {
	r    *Redactor
	next slog.Handler
}

var _ slog.Handler = (*Handler)(nil)

// Handler wraps next so that every record is redacted first.
func (r *Redactor) Handler(next slog.Handler) *Handler {
	return &Handler{r: r, next: next}
}

// Enabled reports whether next handles records at level.
func (h *Handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

// Handle redacts rec and passes the copy to next.
func (h *Handler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, h.r.String(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

// WithAttrs returns a Handler whose attributes are redacted once, now.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		red[i] = h.attr(a)
	}
	return &Handler{r: h.r, next: h.next.WithAttrs(red)}
}

// WithGroup returns a Handler that opens the group in next.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{r: h.r, next: h.next.WithGroup(name)}
}

func (h *Handler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		s := v.String()
		if s != "" && h.r.enabled[kJSON] && h.r.secretName([]byte(a.Key)) {
			return slog.String(a.Key, string(h.r.markers[kJSON]))
		}
		return slog.String(a.Key, h.r.String(s))
	case slog.KindGroup:
		g := v.Group()
		red := make([]slog.Attr, len(g))
		for i, ga := range g {
			red[i] = h.attr(ga)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(red...)}
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return slog.String(a.Key, h.r.String(err.Error()))
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}
