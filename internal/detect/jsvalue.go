package detect

import (
	"bytes"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/tdewolff/parse/v2/js"
)

// The JavaScript evaluator understands literals only. A value is one of:
//
//	string      a string literal (or a template literal without substitutions)
//	jsNumber    a numeric literal, kept as decimal text so money stays exact
//	bool        true / false
//	nil         null
//	jsObject    an object literal
//	[]any       an array literal
//	unknown     anything else: identifiers not bound to a literal, calls,
//	            operators, functions; such a value is skipped, never guessed
type (
	jsNumber string
	jsObject map[string]any
	unknownT struct{}
)

var unknown any = unknownT{}

// maxEvalDepth bounds how deeply nested literals are evaluated; real
// ecommerce objects nest four or five levels.
const maxEvalDepth = 32

// evaluator turns AST expressions into values, resolving identifiers bound
// to literals earlier on the page (var x = {…}; dataLayer.push(x)).
type evaluator struct {
	env map[string]any
}

func (e *evaluator) eval(x js.IExpr, depth int) any {
	if depth > maxEvalDepth || x == nil {
		return unknown
	}
	switch n := x.(type) {
	case *js.LiteralExpr:
		return literal(n)
	case *js.ObjectExpr:
		obj := make(jsObject, len(n.List))
		for _, p := range n.List {
			if p.Spread {
				// {...x}: copy x's properties when it is a known object.
				if src, ok := e.eval(p.Value, depth+1).(jsObject); ok {
					for k, v := range src {
						obj[k] = v
					}
				}
				continue
			}
			var key string
			switch {
			case p.Name == nil:
				// Shorthand {transaction_id}: the value is the variable.
				v, ok := p.Value.(*js.Var)
				if !ok {
					continue
				}
				key = string(v.Name())
			case p.Name.IsComputed():
				k, ok := e.eval(p.Name.Computed, depth+1).(string)
				if !ok {
					continue
				}
				key = k
			default:
				k, ok := propertyKey(p.Name.Literal)
				if !ok {
					continue
				}
				key = k
			}
			obj[key] = e.eval(p.Value, depth+1)
		}
		return obj
	case *js.ArrayExpr:
		arr := make([]any, 0, len(n.List))
		for _, el := range n.List {
			if el.Spread {
				if src, ok := e.eval(el.Value, depth+1).([]any); ok {
					arr = append(arr, src...)
				}
				continue
			}
			if el.Value == nil { // hole: [a,,b]
				arr = append(arr, unknown)
				continue
			}
			arr = append(arr, e.eval(el.Value, depth+1))
		}
		return arr
	case *js.UnaryExpr:
		v := e.eval(n.X, depth+1)
		num, ok := v.(jsNumber)
		if !ok {
			return unknown
		}
		switch n.Op {
		case js.NegToken:
			if strings.HasPrefix(string(num), "-") {
				return num[1:]
			}
			return "-" + num
		case js.PosToken:
			return num
		}
		return unknown
	case *js.GroupExpr:
		return e.eval(n.X, depth+1)
	case *js.TemplateExpr:
		if n.Tag != nil || len(n.List) > 0 {
			return unknown
		}
		s, ok := jsUnquote(n.Tail)
		if !ok {
			return unknown
		}
		return s
	case *js.Var:
		if v, ok := e.env[string(n.Name())]; ok {
			return v
		}
		if string(n.Name()) == "undefined" {
			return nil
		}
		return unknown
	}
	return unknown
}

// bind records name = value for later identifier references; values that are
// not literals unbind the name, since an earlier literal no longer holds.
func (e *evaluator) bind(name string, v any) {
	if _, ok := v.(unknownT); ok {
		delete(e.env, name)
		return
	}
	if e.env == nil {
		e.env = make(map[string]any)
	}
	e.env[name] = v
}

func literal(n *js.LiteralExpr) any {
	switch n.TokenType {
	case js.StringToken:
		s, ok := jsUnquote(n.Data)
		if !ok {
			return unknown
		}
		return s
	case js.TrueToken:
		return true
	case js.FalseToken:
		return false
	case js.NullToken:
		return nil
	case js.DecimalToken, js.IntegerToken:
		// 1_000.5 is 1000.5; ParseDecimal reads plain decimal text.
		s := strings.ReplaceAll(string(n.Data), "_", "")
		if strings.ContainsAny(s, "eE") {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return unknown
			}
			s = strconv.FormatFloat(f, 'f', -1, 64)
		}
		return jsNumber(s)
	case js.BinaryToken, js.OctalToken, js.HexadecimalToken:
		s := strings.ReplaceAll(string(n.Data), "_", "")
		i, err := strconv.ParseInt(s, 0, 64)
		if err != nil {
			return unknown
		}
		return jsNumber(strconv.FormatInt(i, 10))
	}
	return unknown
}

// propertyKey returns an object literal key written as an identifier, a
// string or a number.
func propertyKey(l js.LiteralExpr) (string, bool) {
	switch l.TokenType {
	case js.StringToken:
		return jsUnquote(l.Data)
	case js.ErrorToken:
		return "", false
	}
	if v, ok := literal(&l).(jsNumber); ok && (l.TokenType&js.NumericToken) != 0 {
		return string(v), true
	}
	return string(l.Data), true // identifier or keyword used as a name
}

// jsUnquote decodes a JavaScript string literal including its quotes ('…',
// "…" or `…`).
func jsUnquote(b []byte) (string, bool) {
	if len(b) < 2 || b[0] != b[len(b)-1] || (b[0] != '"' && b[0] != '\'' && b[0] != '`') {
		return "", false
	}
	b = b[1 : len(b)-1]
	if bytes.IndexByte(b, '\\') < 0 {
		return string(b), true
	}
	var sb strings.Builder
	sb.Grow(len(b))
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c != '\\' {
			sb.WriteByte(c)
			continue
		}
		i++
		if i >= len(b) {
			return "", false
		}
		switch c = b[i]; c {
		case 'n':
			sb.WriteByte('\n')
		case 't':
			sb.WriteByte('\t')
		case 'r':
			sb.WriteByte('\r')
		case 'b':
			sb.WriteByte('\b')
		case 'f':
			sb.WriteByte('\f')
		case 'v':
			sb.WriteByte('\v')
		case '0':
			sb.WriteByte(0)
		case '\r': // line continuation
			if i+1 < len(b) && b[i+1] == '\n' {
				i++
			}
		case '\n':
		case 'x':
			if i+2 >= len(b) {
				return "", false
			}
			v, err := strconv.ParseUint(string(b[i+1:i+3]), 16, 8)
			if err != nil {
				return "", false
			}
			sb.WriteRune(rune(v))
			i += 2
		case 'u':
			r, n, ok := unicodeEscape(b[i+1:])
			if !ok {
				return "", false
			}
			i += n
			// A high surrogate followed by \u low surrogate is one rune.
			if r >= 0xD800 && r < 0xDC00 && i+2 < len(b) && b[i+1] == '\\' && b[i+2] == 'u' {
				if r2, n2, ok := unicodeEscape(b[i+3:]); ok && r2 >= 0xDC00 && r2 < 0xE000 {
					r = (r-0xD800)<<10 + (r2 - 0xDC00) + 0x10000
					i += 2 + n2
				}
			}
			if !utf8.ValidRune(r) {
				r = utf8.RuneError
			}
			sb.WriteRune(r)
		default:
			sb.WriteByte(c) // \' \" \\ \/ and identity escapes
		}
	}
	return sb.String(), true
}

// unicodeEscape reads the part after \u: XXXX or {X…}. It returns the rune
// and the number of bytes consumed.
func unicodeEscape(b []byte) (rune, int, bool) {
	if len(b) > 0 && b[0] == '{' {
		end := bytes.IndexByte(b, '}')
		if end < 2 || end > 7 {
			return 0, 0, false
		}
		v, err := strconv.ParseUint(string(b[1:end]), 16, 32)
		if err != nil || v > utf8.MaxRune {
			return 0, 0, false
		}
		return rune(v), end + 1, true
	}
	if len(b) < 4 {
		return 0, 0, false
	}
	v, err := strconv.ParseUint(string(b[:4]), 16, 16)
	if err != nil {
		return 0, 0, false
	}
	return rune(v), 4, true
}

// str renders a scalar value as text: strings as they are, numbers as their
// decimal text; anything else is "" (not found).
func str(v any) string {
	switch t := v.(type) {
	case string:
		return strings.TrimSpace(t)
	case jsNumber:
		return string(t)
	}
	return ""
}

// get follows a path of object keys.
func get(v any, path ...string) any {
	for _, k := range path {
		o, ok := v.(jsObject)
		if !ok {
			return unknown
		}
		if v, ok = o[k]; !ok {
			return unknown
		}
	}
	return v
}
