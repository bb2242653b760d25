package decorate

import (
	"bytes"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// fuzzRef is a reference no seed contains, so that where it appears in
// the output an insertion ends.
const fuzzRef = "Q7zRfX"

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
		var buf bytes.Buffer
		w := NewWriter(&buf, testTargets, fuzzRef)
		if _, err := w.Write(in); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		out := buf.Bytes()
		insertions, ok := findInsertions(in, out)
		if !ok {
			t.Fatalf("the output is not the input with separators and parameters added:\n in %q\nout %q", in, out)
		}
		decorated, tokenized := compareTokens(t, in, out)
		// A tag the page leaves unfinished is no token (a browser drops it
		// too); a link value in it may be decorated.
		inTokens := 0
		for _, at := range insertions {
			if at < tokenized {
				inTokens++
			}
		}
		if decorated != inTokens {
			t.Fatalf("%d insertions but %d link values changed:\n in %q\nout %q", inTokens, decorated, in, out)
		}
		k := int(split) % (len(in) + 1)
		var two bytes.Buffer
		w = NewWriter(&two, testTargets, fuzzRef)
		_, _ = w.Write(in[:k])
		_, _ = w.Write(in[k:])
		_ = w.Close()
		if !bytes.Equal(two.Bytes(), out) {
			t.Fatalf("split at %d:\n got %q\nwant %q", k, two.Bytes(), out)
		}
	})
}

// findInsertions finds where out is in with insertions of a separator
// and a target's parameter with fuzzRef, and reports whether it is. An
// insertion ends where fuzzRef does; which separator it has is found by
// trying each against the bytes that follow.
func findInsertions(in, out []byte) (at []int, ok bool) {
	var ends []int
	for i := 0; ; {
		k := bytes.Index(out[i:], []byte(fuzzRef))
		if k < 0 {
			break
		}
		ends = append(ends, i+k+len(fuzzRef))
		i += k + len(fuzzRef)
	}
	var match func(n, inPos, outPos int) bool
	match = func(n, inPos, outPos int) bool {
		if n == len(ends) {
			return bytes.Equal(out[outPos:], in[inPos:])
		}
		for _, t := range testTargets {
			for _, sep := range []string{"", "?", "&amp;", ";"} {
				ins := sep + url.QueryEscape(t.Param) + "=" + fuzzRef
				s := ends[n] - len(ins)
				if s < outPos || string(out[s:ends[n]]) != ins || !bytes.HasPrefix(in[inPos:], out[outPos:s]) {
					continue
				}
				at = append(at, s)
				if match(n+1, inPos+s-outPos, ends[n]) {
					return true
				}
				at = at[:len(at)-1]
			}
		}
		return false
	}
	return at, match(0, 0, 0)
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
