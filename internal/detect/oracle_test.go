package detect

import (
	"bytes"
	"regexp"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/tdewolff/parse/v2"
	"github.com/tdewolff/parse/v2/html"
)

// scanBufPool holds scratch copies of bodies for the HTML lexer. The lexer
// lower-cases tag and attribute names in place, and a Page's Body must stay
// as the client received it (a regex source may read it afterwards), so the
// lexer runs over a copy; copying 300 KB costs microseconds, and pooling the
// copy keeps it from costing an allocation per page.
var scanBufPool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// maxPooledScanBuf keeps exceptionally large scratch buffers out of the pool.
const maxPooledScanBuf = 8 << 20

// lexerScripts is the reference for findScripts: it tokenizes body with
// the tdewolff HTML lexer and returns its script elements in
// document order. It never fails: malformed HTML is tokenized the way a
// browser would recover, and an unterminated script at the end of a
// truncated body still yields its text so far.
func lexerScripts(body []byte) []script {
	bp := scanBufPool.Get().(*[]byte)
	buf := *bp
	if cap(buf) < len(body)+1 {
		buf = make([]byte, 0, len(body)+len(body)/4+1)
	}
	// The lexer appends a NUL sentinel; with spare capacity it writes it in
	// place instead of reallocating, so every token stays a sub-slice of buf
	// and its offset in buf is its offset in body.
	buf = append(buf[:0], body...)
	defer func() {
		if cap(buf) <= maxPooledScanBuf {
			*bp = buf[:0]
			scanBufPool.Put(bp)
		}
	}()

	var out []script
	l := html.NewLexer(parse.NewInputBytes(buf))
	inScript := false
	kind := kindJS
	for {
		tt, _ := l.Next()
		switch tt {
		case html.ErrorToken:
			return out
		case html.StartTagToken:
			inScript = bytes.Equal(l.Text(), []byte("script"))
			kind = kindJS
		case html.AttributeToken:
			if inScript && bytes.Equal(l.AttrKey(), []byte("type")) {
				kind = scriptKindOf(bytes.Trim(l.AttrVal(), `"'`))
			}
		case html.StartTagVoidToken:
			inScript = false
		case html.StartTagCloseToken:
			if !inScript {
				continue
			}
			inScript = false
			// The raw text token follows at once; an empty script goes
			// straight to its end tag.
			tt, data := l.Next()
			if tt != html.TextToken || len(data) == 0 {
				continue
			}
			start := offsetIn(buf, data)
			if start < 0 || start+len(data) > len(body) {
				continue // not a sub-slice of buf; cannot happen with spare capacity
			}
			out = append(out, script{kind: kind, start: start, end: start + len(data)})
		}
	}
}

// offsetIn returns the index in buf at which sub (a sub-slice of buf)
// starts. The lexer returns tokens as three-index sub-slices of its input,
// which hide their position, so it is computed from the addresses; nothing
// is converted back to a pointer.
func offsetIn(buf, sub []byte) int {
	if len(sub) == 0 || len(buf) == 0 {
		return -1
	}
	return int(uintptr(unsafe.Pointer(unsafe.SliceData(sub))) - uintptr(unsafe.Pointer(unsafe.SliceData(buf))))
}

// sameScripts compares findScripts with the tdewolff lexer on one body.
func sameScripts(t *testing.T, body []byte) {
	t.Helper()
	got, want := findScripts(body), lexerScripts(body)
	if len(got) != len(want) {
		t.Fatalf("findScripts found %d scripts, lexer %d\n got %v\nwant %v", len(got), len(want), got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("script %d: findScripts %+v %q, lexer %+v %q", i, got[i], body[got[i].start:got[i].end], want[i], body[want[i].start:want[i].end])
		}
	}
}

func TestFindScriptsMatchesLexer(t *testing.T) {
	pages := map[string][]byte{"big": bigPage(t)}
	for _, name := range []string{"woocommerce-thankyou.html", "gtag-purchase.html", "magento-success.html"} {
		pages[name] = readTestdata(t, name)
	}
	for _, s := range scriptCorpus {
		pages[s] = []byte(s)
	}
	for name, body := range pages {
		t.Run(name, func(t *testing.T) { sameScripts(t, body) })
	}
}

// slashInTag finds a '/' inside a start tag, which the lexer reads as
// closing the tag (<script/x>) where the standard ignores it.
var slashInTag = regexp.MustCompile(`<[a-zA-Z][^>]*/`)

// oddEndTag finds an end tag name followed by something other than space
// or '>' (</script0): the lexer ends the script there, the standard (and
// findScripts) reads a different tag name.
var oddEndTag = regexp.MustCompile(`(?i)</[a-z]+[^a-z>\s]`)

// scriptCorpus holds the markup that decides where scripts are.
var scriptCorpus = []string{
	`<script>a</script><SCRIPT type=module>b</SCRIPT ><script type='application/ld+json'>c</script>`,
	`<!-- <script>hidden</script> --><script>shown</script>`,
	`<div title="<script>not</script>"><script>yes</script></div>`,
	`<p data-x='>'><script type="text/x-magento-init" >{"a":1}</script>`,
	`<script>var s = "</scr" + "ipt>"; x()</script>`,
	`<script><!-- <script> </script> still inside --></script><script>next</script>`,
	`<textarea><script>no</script></textarea><style>/*<script>*/</style><title><script></title>`,
	`<script>unterminated`,
	`<!DOCTYPE html><?xml x?><![CDATA[<script>]]><script>z</script>`,
	`<script></script><script>  </script>`,
	`</ script><script type=text/javascript>q</script>`,
	`<scriptx>no</scriptx><script>y</script>`,
}

// FuzzFindScripts checks findScripts against the tdewolff lexer. The lexer
// departs from browsers in places findScripts follows the standard
// (noscript content, SVG/MathML blocks, a self-closing <script/>), so
// inputs with those are only checked for panics.
func FuzzFindScripts(f *testing.F) {
	for _, s := range scriptCorpus {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := findScripts([]byte(s))
		for _, sc := range got {
			if sc.start > sc.end || sc.end > len(s) {
				t.Fatalf("bad range %+v", sc)
			}
		}
		lower := strings.ToLower(s)
		for _, skip := range []string{"noscript", "<svg", "<math", "noembed", "noframes", "<!--", "plaintext", "/>", "<![", "\x00"} {
			if strings.Contains(lower, skip) {
				return
			}
		}
		if slashInTag.MatchString(s) || oddEndTag.MatchString(s) {
			return
		}
		sameScripts(t, []byte(s))
	})
}

func TestFindScriptsFollowsBrowsers(t *testing.T) {
	tests := []struct{ body, want string }{
		// The self-closing flag means nothing on a script: the text that
		// follows is its content.
		{`<script/>y()</script>`, "y()"},
		// Scripts in noscript never run.
		{`<noscript><script>n()</script></noscript><script>s()</script>`, "s()"},
		// A script inside inline SVG runs.
		{`<svg><script>v()</script></svg>`, "v()"},
	}
	for _, tt := range tests {
		got := findScripts([]byte(tt.body))
		if len(got) != 1 || tt.body[got[0].start:got[0].end] != tt.want {
			t.Errorf("findScripts(%q) = %v, want one script %q", tt.body, got, tt.want)
		}
	}
}
