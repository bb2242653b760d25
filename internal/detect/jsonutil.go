package detect

import (
	"bytes"
	stdhtml "html"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/tidwall/gjson"
)

// scalar renders a JSON scalar as text. Numbers keep their source digits
// (gjson's String would go through float64 for non-integers), so an amount
// stays exact.
func scalar(r gjson.Result) string {
	switch r.Type {
	case gjson.String:
		return strings.TrimSpace(r.Str)
	case gjson.Number:
		return r.Raw
	}
	return ""
}

// validJSON returns the first reading of a script's text that is valid
// JSON, cheapest first, or nil: as it is; HTML-unescaped (&quot; → "), for
// templates that escaped it for HTML; and with \uXXXX escapes decoded, for
// Magento, whose GA4 template writes its JSON through
// escapeHtml(escapeJs(json)): escapeJs turns every byte outside
// [A-Za-z0-9,._] into \uXXXX, so `{"a":1}` reaches the page as
// `\u007B\u0022a\u0022\u003A1\u007D`, which no JSON parser reads as is.
// Decoding one level of escapes restores the original JSON exactly, since
// the JSON's own escapes were escaped once more (\" became \u005C\u0022).
func validJSON(text []byte) []byte {
	if gjson.ValidBytes(text) {
		return text
	}
	cur := text
	if bytes.IndexByte(text, '&') >= 0 {
		cur = []byte(stdhtml.UnescapeString(string(text)))
		if gjson.ValidBytes(cur) {
			return cur
		}
	}
	if bytes.Contains(cur, []byte(`\u`)) {
		if u := unescapeUnicode(cur); gjson.ValidBytes(u) {
			return u
		}
	}
	return nil
}

// unescapeUnicode decodes each \uXXXX in b once. Magento's escapeJs writes
// characters outside the BMP as eight hex digits after one \u (its UTF-16BE
// bytes), so a high surrogate followed by four hex digits of a low surrogate
// is joined too. A backslash that does not start \uXXXX is kept.
func unescapeUnicode(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' || i+6 > len(b) || b[i+1] != 'u' {
			out = append(out, b[i])
			continue
		}
		r, ok := hex4(b[i+2:])
		if !ok {
			out = append(out, b[i])
			continue
		}
		i += 5
		if r >= 0xD800 && r < 0xDC00 {
			rest := b[i+1:]
			if len(rest) >= 6 && rest[0] == '\\' && rest[1] == 'u' {
				rest = rest[2:]
				if r2, ok := hex4(rest); ok && r2 >= 0xDC00 && r2 < 0xE000 {
					r = (r-0xD800)<<10 + (r2 - 0xDC00) + 0x10000
					i += 6
				}
			} else if r2, ok := hex4(rest); ok && r2 >= 0xDC00 && r2 < 0xE000 {
				r = (r-0xD800)<<10 + (r2 - 0xDC00) + 0x10000
				i += 4
			}
		}
		if !utf8.ValidRune(r) {
			r = utf8.RuneError
		}
		out = utf8.AppendRune(out, r)
	}
	return out
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	v, err := strconv.ParseUint(string(b[:4]), 16, 16)
	if err != nil {
		return 0, false
	}
	return rune(v), true
}

// jsonItems reads an array of item objects with the given keys.
func jsonItems(arr gjson.Result, idKey, nameKey string) []order.Item {
	if !arr.IsArray() {
		return nil
	}
	var out []order.Item
	arr.ForEach(func(_, v gjson.Result) bool {
		if !v.IsObject() {
			return true
		}
		it := order.Item{ID: scalar(v.Get(idKey)), Name: scalar(v.Get(nameKey))}
		it.Price, _ = order.ParseDecimal(scalar(v.Get("price")))
		it.Quantity = quantity(scalar(v.Get("quantity")))
		out = append(out, it)
		return len(out) < maxItems
	})
	return out
}
