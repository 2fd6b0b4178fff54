package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/bay-sandbox/bay/gateway/apierr"
)

// decodeBody decodes the JSON body into v. Malformed JSON or a value of the
// wrong type is a 422 (schema error); an empty body is accepted only when
// optional is true.
func decodeBody(c *fiber.Ctx, v any, optional bool) error {
	body := bytes.TrimSpace(c.Body())
	if len(body) == 0 {
		if optional {
			return nil
		}
		return apierr.Schema("body", "a JSON body is required")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return apierr.Schema(te.Field, "field %q must be %s, not %s", te.Field, te.Type.String(), te.Value)
		}
		return apierr.Schema("body", "malformed JSON body: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return apierr.Schema("body", "malformed JSON body: trailing data")
	}
	return nil
}

// intRange checks an optional int field against [lo, hi], filling def when
// absent. Out of range is a schema error (422).
func intRange(field string, v *int, def, lo, hi int) (int, error) {
	if v == nil {
		return def, nil
	}
	if *v < lo || *v > hi {
		return 0, apierr.Schema(field, "%s must be between %d and %d", field, lo, hi)
	}
	return *v, nil
}

// queryInt parses an optional integer query parameter in [lo, hi].
func queryInt(c *fiber.Ctx, name string, def, lo, hi int) (int, error) {
	raw := c.Query(name)
	if raw == "" {
		return def, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < lo || n > hi {
		return 0, apierr.Schema(name, "query parameter %s must be an integer between %d and %d", name, lo, hi)
	}
	return n, nil
}

// queryBool parses an optional boolean query parameter.
func queryBool(c *fiber.Ctx, name string) (*bool, error) {
	raw := strings.ToLower(c.Query(name))
	switch raw {
	case "":
		return nil, nil
	case "true", "1", "yes":
		t := true
		return &t, nil
	case "false", "0", "no":
		f := false
		return &f, nil
	}
	return nil, apierr.Schema(name, "query parameter %s must be a boolean", name)
}

// required reports a missing required string field as a 422.
func required[T any](field string, v *T) (T, error) {
	if v == nil {
		var zero T
		return zero, apierr.Schema(field, "field %q is required", field)
	}
	return *v, nil
}

// requiredText is required for a string that must also hold more than
// blanks; a blank one is well-formed but wrong (400).
func requiredText(field string, v *string) (string, error) {
	s, err := required(field, v)
	if err == nil && strings.TrimSpace(s) == "" {
		err = apierr.Validation("%s must not be empty", field)
	}
	return s, err
}
