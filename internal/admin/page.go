package admin

import (
	"encoding/base64"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/store"
)

// Paging of list endpoints: ?limit= (1 to maxPageLimit, default
// defaultPageLimit) and ?cursor=, the next of the previous page. A
// response holds next only when there may be more.
const (
	defaultPageLimit = 100
	maxPageLimit     = 1000
)

// pageQuery reads ?cursor= and ?limit= of a list request.
func pageQuery(q url.Values) (store.PageCursor, int, error) {
	limit := defaultPageLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPageLimit {
			return store.PageCursor{}, 0, gatehouse.Errorf(gatehouse.EINVALID, "limit: must be 1 to %d", maxPageLimit)
		}
		limit = n
	}
	c, err := decodeCursor(q.Get("cursor"))
	if err != nil {
		return store.PageCursor{}, 0, err
	}
	return c, limit, nil
}

// encodeCursor is c as an opaque URL-safe token: the creation time in
// unix nanoseconds (0 for none: the users list orders by name alone) and
// the id.
func encodeCursor(c store.PageCursor) string {
	var ns int64
	if !c.CreatedAt.IsZero() {
		ns = c.CreatedAt.UnixNano()
	}
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(ns, 10) + "." + c.ID))
}

func decodeCursor(s string) (store.PageCursor, error) {
	if s == "" {
		return store.PageCursor{}, nil
	}
	bad := gatehouse.Errorf(gatehouse.EINVALID, "cursor: not a cursor this list returned as next; start again without it")
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return store.PageCursor{}, bad
	}
	ns, id, ok := strings.Cut(string(b), ".")
	n, err := strconv.ParseInt(ns, 10, 64)
	if !ok || err != nil || id == "" {
		return store.PageCursor{}, bad
	}
	c := store.PageCursor{ID: id}
	if n != 0 {
		c.CreatedAt = time.Unix(0, n).UTC()
	}
	return c, nil
}
