package decorate

import (
	"bytes"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// fuzzRef is a reference no seed contains, so that every write that
// carries it is an insertion.
const fuzzRef = "Q7zRfX"

// recorder keeps each write the Writer makes.
type recorder struct{ writes [][]byte }

func (r *recorder) Write(p []byte) (int, error) {
	r.writes = append(r.writes, bytes.Clone(p))
	return len(p), nil
}

// FuzzWriter checks, for any page, that the bytes outside rewritten link
// values pass unchanged, that what is added is a separator and one target's
// parameter, that the page tokenizes (with golang.org/x/net/html, an
// independent tokenizer) to the same tokens but for decorated link values
// of links to a target, and that writing the page in two pieces changes
// nothing.
func FuzzWriter(f *testing.F) {
	for _, tc := range decorateCases {
		f.Add([]byte(tc.in), uint16(len(tc.in)/2))
	}
	page, _ := testPage()
	f.Add([]byte(page), uint16(len(page)/3))
	f.Fuzz(func(t *testing.T, in []byte, split uint16) {
		if bytes.Contains(in, []byte(fuzzRef)) {
			return
		}
		rec := &recorder{}
		w := NewWriter(rec, testTargets, fuzzRef)
		if _, err := w.Write(in); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		var out, rest bytes.Buffer
		var insertions []int // where in out
		for _, b := range rec.writes {
			if bytes.Contains(b, []byte(fuzzRef)) {
				if !isInsertion(string(b)) {
					t.Fatalf("added %q, not a separator and a parameter", b)
				}
				insertions = append(insertions, out.Len())
			} else {
				rest.Write(b)
			}
			out.Write(b)
		}
		if !bytes.Equal(rest.Bytes(), in) {
			t.Fatalf("bytes outside the insertions changed:\n in %q\nout %q", in, out.Bytes())
		}
		decorated, tokenized := compareTokens(t, in, out.Bytes())
		// A tag the page leaves unfinished is no token (a browser drops it
		// too); a link value in it may be decorated.
		inTokens := 0
		for _, at := range insertions {
			if at < tokenized {
				inTokens++
			}
		}
		if decorated != inTokens {
			t.Fatalf("%d insertions but %d link values changed:\n in %q\nout %q", inTokens, decorated, in, out.Bytes())
		}
		k := int(split) % (len(in) + 1)
		var two bytes.Buffer
		w = NewWriter(&two, testTargets, fuzzRef)
		_, _ = w.Write(in[:k])
		_, _ = w.Write(in[k:])
		_ = w.Close()
		if !bytes.Equal(two.Bytes(), out.Bytes()) {
			t.Fatalf("split at %d:\n got %q\nwant %q", k, two.Bytes(), out.Bytes())
		}
	})
}

// isInsertion reports whether s is a separator and one target's parameter
// with fuzzRef.
func isInsertion(s string) bool {
	for _, sep := range []string{"", "?", "&amp;", ";"} {
		for _, t := range testTargets {
			if s == sep+url.QueryEscape(t.Param)+"="+fuzzRef {
				return true
			}
		}
	}
	return false
}

// linkAttr is the attribute that holds an element's link.
func linkAttr(tag string) string {
	switch tag {
	case "a", "area":
		return "href"
	case "form":
		return "action"
	case "button", "input":
		return "formaction"
	}
	return ""
}

// compareTokens tokenizes in and out and fails unless they have the same
// tokens, but for link values that out decorates. It returns how many, and
// the length of out's tokens (up to an unfinished tag at its end).
func compareTokens(t *testing.T, in, out []byte) (decorated, tokenized int) {
	t.Helper()
	zi, zo := html.NewTokenizer(bytes.NewReader(in)), html.NewTokenizer(bytes.NewReader(out))
	for {
		ti, to := zi.Next(), zo.Next()
		if ti != to {
			t.Fatalf("token types differ: %v and %v\n in %q\nout %q", ti, to, in, out)
		}
		if ti == html.ErrorToken {
			return decorated, tokenized
		}
		tokenized += len(zo.Raw())
		a, b := zi.Token(), zo.Token()
		if a.Data != b.Data || len(a.Attr) != len(b.Attr) {
			t.Fatalf("tokens differ: %q and %q\n in %q\nout %q", a, b, in, out)
		}
		for i := range a.Attr {
			x, y := a.Attr[i], b.Attr[i]
			if x.Key != y.Key || x.Namespace != y.Namespace {
				t.Fatalf("attributes differ: %q and %q", x, y)
			}
			if x.Val == y.Val {
				continue
			}
			if ti != html.StartTagToken && ti != html.SelfClosingTagToken || x.Key != linkAttr(a.Data) {
				t.Fatalf("<%s %s> changed: %q became %q\n in %q\nout %q", a.Data, x.Key, x.Val, y.Val, in, out)
			}
			if !decorates(x.Val, y.Val) {
				t.Fatalf("<%s %s=%q> became %q, which is not it decorated", a.Data, x.Key, x.Val, y.Val)
			}
			decorated++
		}
	}
}

// decorates reports whether after is before, a link to a target, with that
// target's parameter inserted once.
func decorates(before, after string) bool {
	host := linkHost(before)
	for _, t := range testTargets {
		if !strings.EqualFold(host, t.Host) {
			continue
		}
		add := url.QueryEscape(t.Param) + "=" + fuzzRef
		for _, sep := range []string{"?", "&", ""} {
			if i := strings.Index(after, sep+add); i >= 0 && after[:i]+after[i+len(sep+add):] == before {
				return true
			}
		}
	}
	return false
}

// linkHost is the host an absolute or protocol-relative link names, read
// with net/url where it can parse the link.
func linkHost(v string) string {
	v = strings.Trim(v, "\x00\x01\x02\x03\x04\x05\x06\x07\x08\t\n\v\f\r\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f ")
	v = strings.NewReplacer("\t", "", "\n", "", "\r", "", `\`, "/").Replace(v)
	lv := strings.ToLower(v)
	if !strings.HasPrefix(lv, "http://") && !strings.HasPrefix(lv, "https://") && !strings.HasPrefix(lv, "//") {
		return ""
	}
	if u, err := url.Parse(v); err == nil {
		return u.Hostname()
	}
	auth := v[strings.Index(v, "//")+2:]
	if i := strings.IndexAny(auth, "/?#"); i >= 0 {
		auth = auth[:i]
	}
	if i := strings.LastIndexByte(auth, '@'); i >= 0 {
		auth = auth[i+1:]
	}
	if i := strings.LastIndexByte(auth, ':'); i >= 0 {
		auth = auth[:i]
	}
	return auth
}
