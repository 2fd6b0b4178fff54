package sqlstore

import (
	"github.com/bay-sandbox/bay/store"

	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// defaultPageSize applies when a filter's Limit is zero or negative.
const defaultPageSize = 50

// cursorKey is the position of the last row of a page in a newest-first
// keyset order: (created_at DESC, id DESC). The next page holds the rows
// strictly after it, so rows inserted meanwhile cannot shift or repeat it.
type cursorKey struct {
	createdMS int64
	id        string
}

// cursorPrefix versions the opaque format so it can change later without
// misreading old cursors.
const cursorPrefix = "v1:"

func encodeCursor(k cursorKey) string {
	raw := cursorPrefix + strconv.FormatInt(k.createdMS, 10) + ":" + k.id
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

func decodeCursor(c string) (cursorKey, error) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return cursorKey{}, fmt.Errorf("%w: not base64", store.ErrInvalidCursor)
	}
	rest, ok := strings.CutPrefix(string(raw), cursorPrefix)
	if !ok {
		return cursorKey{}, fmt.Errorf("%w: unknown format", store.ErrInvalidCursor)
	}
	ts, id, ok := strings.Cut(rest, ":")
	if !ok || id == "" {
		return cursorKey{}, fmt.Errorf("%w: malformed", store.ErrInvalidCursor)
	}
	n, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return cursorKey{}, fmt.Errorf("%w: malformed time", store.ErrInvalidCursor)
	}
	return cursorKey{createdMS: n, id: id}, nil
}

func pageSize(limit int) int {
	if limit <= 0 {
		return defaultPageSize
	}
	return limit
}

// keysetPage runs q (a SELECT whose WHERE clause args fill) for one page in
// cursorKey order after cursor: it appends the cursor condition, the order
// and a limit one past the page, so the extra row tells whether a next page
// exists. It returns the page and the next cursor ("" at the end).
func keysetPage[T any](ctx context.Context,
	query func(context.Context, string, ...any) ([]T, error), key func(T) cursorKey,
	q string, args []any, cursor string, limit int) ([]T, string, error) {
	limit = pageSize(limit)
	if cursor != "" {
		k, err := decodeCursor(cursor)
		if err != nil {
			return nil, "", err
		}
		q += ` AND (created_at, id) < (?, ?)`
		args = append(args, k.createdMS, k.id)
	}
	q += ` ORDER BY created_at DESC, id DESC LIMIT ?`
	args = append(args, limit+1)
	out, err := query(ctx, q, args...)
	if err != nil {
		return nil, "", err
	}
	if len(out) <= limit {
		return out, "", nil
	}
	out = out[:limit]
	return out, encodeCursor(key(out[limit-1])), nil
}
