package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/bay-sandbox/bay/gateway/apierr"
)

// decodeBody decodes the JSON body into v. Malformed JSON or a value of the
// wrong type is a 422 (schema error); an empty body is accepted only when
// optional is true.
func decodeBody(c *fiber.Ctx, v any, optional bool) error {
	raw, err := readBody(c)
	if err != nil {
		return err
	}
	return decodeJSON(raw, v, optional)
}

// decodeJSON is decodeBody on bytes: exactly one JSON value, no trailing
// data; every failure is a 422 naming the field.
func decodeJSON(raw []byte, v any, optional bool) error {
	body := bytes.TrimSpace(raw)
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
			if te.Field == "" {
				return apierr.Schema("body", "the body must be %s, not %s", typeName(te.Type), te.Value)
			}
			return apierr.Schema(te.Field, "field %q must be %s, not %s", te.Field, typeName(te.Type), te.Value)
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
		return 0, apierr.Schema(field, "%s must be between %d and %d, got %d", field, lo, hi, *v).
			With(map[string]any{"field": field, "min": lo, "max": hi})
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
		return 0, apierr.Schema(name, "query parameter %s must be an integer between %d and %d", name, lo, hi).
			With(map[string]any{"field": name, "min": lo, "max": hi})
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

// readBody is the request's body, read with the server's limits (see
// Server.requestBody).
func readBody(c *fiber.Ctx) ([]byte, error) {
	if s, ok := c.Locals(serverKey).(*Server); ok {
		return s.requestBody(c)
	}
	return c.Body(), nil
}

// typeName names a Go type the way a JSON client thinks of it, with the
// bounds for integers.
func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int64:
		return "an integer between -9223372036854775808 and 9223372036854775807"
	case reflect.Int32:
		return "an integer between -2147483648 and 2147483647"
	case reflect.Uint, reflect.Uint64, reflect.Uint32:
		return "a non-negative integer"
	case reflect.Float64, reflect.Float32:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Pointer:
		return typeName(t.Elem())
	}
	return t.String()
}

// int64Range checks an optional int64 field against [lo, hi], filling def
// when absent. Out of range is a schema error (422) naming the bounds.
func int64Range(field string, v *int64, def, lo, hi int64) (int64, error) {
	if v == nil {
		return def, nil
	}
	if *v < lo || *v > hi {
		return 0, apierr.Schema(field, "%s must be between %d and %d, got %d", field, lo, hi, *v).
			With(map[string]any{"field": field, "min": lo, "max": hi})
	}
	return *v, nil
}
