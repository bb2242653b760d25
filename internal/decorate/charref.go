package decorate

// decodeValue appends to dst the attribute value raw up to its first '#',
// with character references decoded as the tokenizer decodes them in an
// attribute value, and NUL as U+FFFD. A decoded character outside ASCII is
// appended as the byte nonASCII: it can be part of no host or parameter name this package
// matches, and its exact value does not matter. It also returns where in
// raw the fragment's '#' is (-1 without a fragment) and the end in raw of
// the last character before it that is not a space or C0 control.
func decodeValue(dst, raw []byte) (dec []byte, hash, end int) {
	for i := 0; i < len(raw); {
		c := raw[i]
		if c == '&' {
			if text, n := charRef(raw[i:]); n > 0 {
				if text == "#" {
					return dst, i, end
				}
				dst = append(dst, text...)
				if text[len(text)-1] > ' ' {
					end = i + n
				}
				i += n
				continue
			}
		}
		if c == '#' {
			return dst, i, end
		}
		if c == 0 {
			// The tokenizer reads NUL in a value as U+FFFD.
			dst = append(dst, nonASCII...)
		} else {
			dst = append(dst, c)
		}
		if c > ' ' || c == 0 {
			end = i + 1
		}
		i++
	}
	return dst, -1, end
}

// nonASCII stands for any decoded character outside ASCII.
const nonASCII = "\x80"

// charRef decodes the character reference at the start of s, which begins
// with '&', and returns its text and its length in s; n is 0 when s starts
// with no reference that an attribute value decodes. Named references are
// known only where they decode to ASCII: another name is left as it is,
// which for this package's purpose is the same as a character outside
// ASCII.
func charRef(s []byte) (text string, n int) {
	if len(s) < 2 {
		return "", 0
	}
	if s[1] == '#' {
		return numericRef(s)
	}
	j := 1
	for j < len(s) && (isAlpha(s[j]) || '0' <= s[j] && s[j] <= '9') {
		j++
	}
	if j == 1 {
		return "", 0
	}
	name := s[1:j]
	if j < len(s) && s[j] == ';' {
		if text, ok := asciiEntities[string(name)]; ok {
			return text, j + 1
		}
		return "", 0
	}
	// A few references are recognised without their semicolon, but in an
	// attribute value not when '=' follows ("?a=1&amp=2" keeps "&amp").
	// name is all the letters and digits here, so none follows.
	if text, ok := legacyEntities[string(name)]; ok && (j == len(s) || s[j] != '=') {
		return text, j
	}
	return "", 0
}

// numericRef decodes "&#123;" or "&#x7B;" (the semicolon is optional).
func numericRef(s []byte) (string, int) {
	i := 2
	hex := i < len(s) && (s[i] == 'x' || s[i] == 'X')
	if hex {
		i++
	}
	start := i
	cp := 0
	for ; i < len(s); i++ {
		c := s[i]
		var d int
		switch {
		case '0' <= c && c <= '9':
			d = int(c - '0')
		case hex && isHex(c):
			d = int(unhex(c))
		default:
			goto done
		}
		if cp <= 0x10FFFF {
			if hex {
				cp = cp*16 + d
			} else {
				cp = cp*10 + d
			}
		}
	}
done:
	if i == start {
		return "", 0 // "&#" or "&#x" without digits is text
	}
	if i < len(s) && s[i] == ';' {
		i++
	}
	if cp == 0 || cp >= 0x80 {
		// NUL becomes U+FFFD; 0x80-0x9F map to Windows-1252 characters,
		// none of them ASCII; the rest is outside ASCII already.
		return nonASCII, i
	}
	return asciiChars[cp : cp+1], i
}

// asciiChars holds every ASCII character, so that a decoded one is a
// substring rather than a new string.
var asciiChars = func() string {
	b := make([]byte, 128)
	for i := range b {
		b[i] = byte(i)
	}
	return string(b)
}()

// asciiEntities are the named character references (without their
// semicolon) that decode to ASCII, from the WHATWG list.
var asciiEntities = map[string]string{
	"Tab": "\t", "NewLine": "\n", "excl": "!", "quot": `"`, "QUOT": `"`, "num": "#",
	"dollar": "$", "percnt": "%", "amp": "&", "AMP": "&", "apos": "'", "lpar": "(",
	"rpar": ")", "ast": "*", "midast": "*", "plus": "+", "comma": ",", "period": ".",
	"sol": "/", "colon": ":", "semi": ";", "lt": "<", "LT": "<", "equals": "=",
	"gt": ">", "GT": ">", "quest": "?", "commat": "@", "lsqb": "[", "lbrack": "[",
	"bsol": `\`, "rsqb": "]", "rbrack": "]", "Hat": "^", "lowbar": "_", "UnderBar": "_",
	"grave": "`", "DiacriticalGrave": "`", "lcub": "{", "lbrace": "{", "verbar": "|",
	"vert": "|", "VerticalLine": "|", "rcub": "}", "rbrace": "}", "fjlig": "fj",
}

// legacyEntities are those of asciiEntities that are also recognised
// without a semicolon.
var legacyEntities = map[string]string{
	"amp": "&", "AMP": "&", "lt": "<", "LT": "<", "gt": ">", "GT": ">", "quot": `"`, "QUOT": `"`,
}
