package dashboard

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/record"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// head is what the layout needs of a page.
type head struct {
	Title string
	// Nav names the menu entry to highlight.
	Nav string
	// Live marks pages the script refreshes while they are open.
	Live bool
}

// page is the data of one page template.
type page interface{ head() head }

// errorPage says what went wrong.
type errorPage struct{ Title, Message string }

func (p errorPage) head() head { return head{Title: p.Title} }

// refusedPage is shown to requests with no authenticated user.
type refusedPage struct{}

func (refusedPage) head() head { return head{Title: "Sign-in required"} }

// layoutData is what every page template gets: the page's own data in
// Page, and what the layout shows around it.
type layoutData struct {
	head
	Base    string
	User    string
	Storage string
	Open    bool
	CSRF    string
	Now     time.Time
	Version string
	Page    any
}

// pages are the parsed templates, one per page, each with the layout.
var pages = func() map[string]*template.Template {
	layout := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html"))
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err)
	}
	out := map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(path.Base(n), ".html")
		if name == "layout" {
			continue
		}
		out[name] = template.Must(template.Must(layout.Clone()).ParseFS(templateFS, n))
	}
	return out
}()

// render writes a page in the layout.
func (d *Dashboard) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	req := requestOf(r)
	data := layoutData{head: p.head(), Base: req.Base, User: req.User, Storage: d.host.Storage(), Open: d.open,
		Now: d.now(), Version: assetVersion, Page: p}
	if status < 400 {
		data.CSRF = d.csrfToken(w, r)
	}
	var buf bytes.Buffer
	if err := pages[name].ExecuteTemplate(&buf, "layout.html", data); err != nil {
		d.logger.Error("rendering a dashboard page", zap.String("page", name), zap.Error(err))
		http.Error(w, "the page could not be rendered; Caddy's log has the details", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// assetVersion changes with the assets, so their URLs can be cached for
// good.
var assetVersion = func() string {
	h := sha256.New()
	_ = fs.WalkDir(assetFS, "assets", func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			b, _ := assetFS.ReadFile(p)
			h.Write(b)
		}
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:12]
}()

func serveAsset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	b, err := assetFS.ReadFile("assets/" + name)
	if err != nil || strings.Contains(name, "/") {
		http.NotFound(w, r)
		return
	}
	if r.URL.Query().Get("v") == assetVersion {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "no-cache")
	}
	w.Header().Set("Content-Type", mime.TypeByExtension(path.Ext(name)))
	_, _ = w.Write(b)
}

// funcs are the templates' helpers.
var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"ago": func(now, t time.Time) string {
		if t.IsZero() {
			return ""
		}
		d := now.Sub(t)
		suffix := " ago"
		if d < 0 {
			d, suffix = -d, " from now"
		}
		switch {
		case d < time.Minute:
			return fmt.Sprintf("%ds", int(d.Seconds())) + suffix
		case d < time.Hour:
			return fmt.Sprintf("%dm", int(d.Minutes())) + suffix
		case d < 48*time.Hour:
			return fmt.Sprintf("%dh", int(d.Hours())) + suffix
		}
		return fmt.Sprintf("%dd", int(d.Hours()/24)) + suffix
	},
	"amount": func(o order.Order) string {
		if !o.HasAmount {
			return "—"
		}
		return Money{Amount: o.Amount.ForCurrency(o.Currency), Currency: o.Currency}.String()
	},
	"price": func(d order.Decimal, currency string) string {
		return Money{Amount: d.ForCurrency(currency), Currency: currency}.String()
	},
	"moneys": func(ms []Money) string {
		if len(ms) == 0 {
			return "0"
		}
		parts := make([]string, len(ms))
		for i, m := range ms {
			parts[i] = m.String()
		}
		return strings.Join(parts, ", ")
	},
	"pct": func(f float64) string { return trimZero(fmt.Sprintf("%.1f", f*100)) + "%" },
	"ms": func(ms float64) string {
		if ms >= 1000 {
			return fmt.Sprintf("%.2f s", ms/1000)
		}
		return fmt.Sprintf("%.1f ms", ms)
	},
	"dur":   func(d time.Duration) string { return roundDuration(d).String() },
	"join":  strings.Join,
	"add":   func(a, b int) int { return a + b },
	"short": shortNumber,
	"state": func(s record.State) string { return "state-" + string(s) },
	"replayable": func(s record.State) bool {
		return s == record.StateDead || s == record.StateDelivered
	},
	"header": func(h http.Header) []string {
		var out []string
		for k, vs := range h {
			for _, v := range vs {
				out = append(out, k+": "+v)
			}
		}
		slices.Sort(out)
		return out
	},
	"lastStatus": func(d record.Delivery) string {
		if n := len(d.Attempts); n > 0 {
			a := d.Attempts[n-1]
			if a.Status != 0 {
				return fmt.Sprint(a.Status)
			}
			if a.Error != "" {
				return "error"
			}
		}
		return "—"
	},
	"kv": func(m map[string]string) []string {
		var out []string
		for _, k := range sortedKeys(m) {
			out = append(out, k+" = "+m[k])
		}
		return out
	},
}
