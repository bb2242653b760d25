package intake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/url"
	"strings"
)

// param is one parameter value as received: form-encoded text (from a
// query string or form body) or a JSON value, which needs no decoding.
type param struct {
	raw  string
	form bool
}

// text decodes the value as form-encoded text ('+' is a space).
func (p param) text() (string, error) {
	if !p.form {
		return p.raw, nil
	}
	return url.QueryUnescape(p.raw)
}

// clickID decodes the value as a click ID: escapes are decoded but a '+'
// stays a '+'. A space is never part of a click ID, while standard-base64
// click IDs (ab+c/d==) reach senders' URLs unescaped.
func (p param) clickID() (string, error) {
	if !p.form {
		return p.raw, nil
	}
	return url.PathUnescape(p.raw)
}

// params are a request's parameters by name: those of the body first,
// then those of the query string.
type params map[string][]param

// maxParams bounds the parameters read from one request.
const maxParams = 256

// readParams reads the query string and, by its Content-Type, a form or
// JSON body. A body without a Content-Type is read as JSON when it starts
// with '{', as a form otherwise.
func readParams(r *Request) (params, error) {
	p := params{}
	if body := bytes.TrimSpace(r.Body); len(body) > 0 {
		kind, err := bodyKind(r.Header.Get("Content-Type"), body)
		if err != nil {
			return p, err
		}
		if kind == "json" {
			err = p.addJSON(body)
		} else {
			err = p.addForm(string(body), "body")
		}
		if err != nil {
			return p, err
		}
	}
	if err := p.addForm(r.RawQuery, "query string"); err != nil {
		return p, err
	}
	return p, nil
}

func bodyKind(contentType string, body []byte) (string, error) {
	if contentType == "" {
		if body[0] == '{' {
			return "json", nil
		}
		return "form", nil
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return "", fmt.Errorf("%w: Content-Type %q unreadable", ErrBadInput, contentType)
	}
	switch {
	case mt == "application/x-www-form-urlencoded":
		return "form", nil
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		return "json", nil
	}
	return "", fmt.Errorf("%w: Content-Type %s: send a query string, a form (application/x-www-form-urlencoded) or JSON", ErrBadInput, mt)
}

// addForm adds the pairs of a form-encoded string. Values stay encoded
// until a field reads them (a click ID keeps its '+').
func (p params) addForm(s, where string) error {
	for s != "" {
		var pair string
		pair, s, _ = strings.Cut(s, "&")
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		key, err := url.QueryUnescape(k)
		if err != nil {
			return fmt.Errorf("%w: %s: bad escape in a parameter name", ErrBadInput, where)
		}
		if err := p.add(key, param{raw: v, form: true}); err != nil {
			return err
		}
	}
	return nil
}

// addJSON adds the members of a JSON object: strings as they are, numbers
// as written (an amount keeps its digits), true and false as words; null,
// objects and arrays are left out.
func (p params) addJSON(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil || obj == nil {
		return fmt.Errorf("%w: body is not a JSON object", ErrBadInput)
	}
	if dec.More() {
		return fmt.Errorf("%w: body holds more than one JSON value", ErrBadInput)
	}
	for k, v := range obj {
		var s string
		switch v := v.(type) {
		case string:
			s = v
		case json.Number:
			s = v.String()
		case bool:
			s = fmt.Sprint(v)
		default:
			continue
		}
		if err := p.add(k, param{raw: s}); err != nil {
			return err
		}
	}
	return nil
}

func (p params) add(key string, v param) error {
	if _, seen := p[key]; !seen && len(p) >= maxParams {
		return fmt.Errorf("%w: more than %d parameters", ErrBadInput, maxParams)
	}
	p[key] = append(p[key], v)
	return nil
}
