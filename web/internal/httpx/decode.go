package httpx

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// MaxBodyBytes bounds a form or JSON body.
const MaxBodyBytes = 4 << 10

// ParseForm reads a form body of at most MaxBodyBytes.
func ParseForm(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return BadRequest(fmt.Sprintf("The form is larger than %d bytes.", MaxBodyBytes))
		}
		return BadRequest("The form could not be read.")
	}
	return nil
}

// DecodeJSON reads one JSON object of at most MaxBodyBytes into v, with
// errors a person understands. An empty body is an empty object; a field
// v does not have is an error.
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	data, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return BadRequest(fmt.Sprintf("The request body is larger than %d bytes.", MaxBodyBytes))
		}
		return BadRequest("The request body could not be read.")
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		data = []byte("{}")
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var (
			se *json.SyntaxError
			te *json.UnmarshalTypeError
		)
		switch {
		case errors.As(err, &se):
			return BadRequest(fmt.Sprintf("The request body is not valid JSON (at byte %d).", se.Offset))
		case errors.As(err, &te) && te.Field != "":
			return BadRequest(fmt.Sprintf("%q must be %s, not %s.", te.Field, jsonKind(te.Type.Kind().String()), te.Value))
		case errors.As(err, &te):
			return BadRequest("The request body must be a JSON object.")
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return BadRequest(fmt.Sprintf("The request body has a field this API does not know: %s.", Truncate(strings.TrimPrefix(err.Error(), "json: unknown field "), 40)))
		case errors.Is(err, io.ErrUnexpectedEOF):
			return BadRequest("The request body is cut off: it is not complete JSON.")
		default:
			return BadRequest("The request body is not valid JSON.")
		}
	}
	if dec.More() {
		return BadRequest("The request body must hold one JSON object, not several.")
	}
	return nil
}

func jsonKind(kind string) string {
	switch kind {
	case "int", "ptr":
		return "a whole number"
	case "string":
		return "a string"
	}
	return "a " + kind
}
