package module_test

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// grafanaDashboard is the dashboard shipped in examples/grafana.
const grafanaDashboard = "../examples/grafana/postback.json"

// metricName finds the tracker's metric names in PromQL.
var metricName = regexp.MustCompile(`\bcaddy_postback_[a-z0-9_]+\b`)

// dashboardQueries returns every PromQL expression of the dashboard: the
// panels' targets and the template variables' queries.
func dashboardQueries(t *testing.T, dash map[string]any) []string {
	t.Helper()
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				if s, ok := e.(string); ok && (k == "expr" || k == "definition" || k == "query") {
					out = append(out, s)
				}
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(dash)
	return out
}

// TestGrafanaDashboardMetricsExist loads the dashboard and checks it
// against the registry of a running Caddy after one click, one conversion
// and one delivery: every metric its queries use exists (GET /metrics on
// the admin endpoint), and every metric of the tracker has a panel. Its
// panels take their data source from the dashboard's Prometheus variable.
func TestGrafanaDashboardMetricsExist(t *testing.T) {
	b, err := os.ReadFile(grafanaDashboard)
	if err != nil {
		t.Fatal(err)
	}
	var dash map[string]any
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("%s: %v", grafanaDashboard, err)
	}

	// The data source is a variable of type prometheus, and every panel
	// and query uses it, so that the import asks for no fixed UID.
	vars, _ := dash["templating"].(map[string]any)["list"].([]any)
	hasDS := slices.ContainsFunc(vars, func(v any) bool {
		m := v.(map[string]any)
		return m["type"] == "datasource" && m["query"] == "prometheus" && m["name"] == "datasource"
	})
	if !hasDS {
		t.Error("the dashboard has no Prometheus data source variable named datasource")
	}
	for _, ds := range regexp.MustCompile(`"uid":\s*"([^"]*)"`).FindAllStringSubmatch(string(b), -1) {
		if ds[1] != "${datasource}" && ds[1] != "caddy-postback" {
			t.Errorf("a fixed data source UID %q", ds[1])
		}
	}

	queries := dashboardQueries(t, dash)
	used := map[string]bool{}
	for _, q := range queries {
		if strings.Count(q, "(") != strings.Count(q, ")") || strings.Count(q, "{") != strings.Count(q, "}") {
			t.Errorf("unbalanced query: %s", q)
		}
		for _, m := range metricName.FindAllString(q, -1) {
			used[m] = true
		}
	}
	if len(used) < 10 {
		t.Fatalf("the dashboard queries only %d metrics: %v", len(used), used)
	}

	// A running Caddy after one click, one conversion and one delivery.
	net := newNetwork(t)
	up := shop(t, nil)
	mustLoad(t, fmt.Sprintf(`{
%s	postback {
		storage %s
		network graf {
			click_param clickid
			url "%s/pb?c={click_id}&o={order_id}"
		}
	}
}

:%d {
	postback {
		conversion purchase {
			match path /thank-you
			order_id {http.request.uri.query.order}
			amount {http.request.uri.query.total}
		}
		webhook /hooks/stripe stripe whsec_grafana_test_secret
	}
	reverse_proxy %s
}
`, globalHead(), t.TempDir(), net.URL, httpPort, hostPort(up)))
	v := landed(t, "GRAF-1")
	get(t, v, "/thank-you?order=G1&total=10")
	if got := net.waitFor(t, 1, 5*time.Second); len(got) != 1 {
		t.Fatalf("postbacks: %q", got)
	}
	waitQueueEmpty(t, 5*time.Second)

	status, body := adminDo(t, "GET", "/metrics", nil)
	if status != 200 {
		t.Fatalf("GET /metrics: %d", status)
	}
	exposed := map[string]bool{}
	for _, line := range strings.Split(string(body), "\n") {
		if m := metricName.FindString(line); m != "" && strings.HasPrefix(line, m) {
			exposed[m] = true
		}
	}
	for m := range used {
		if !exposed[m] {
			t.Errorf("the dashboard queries %s, which the running Caddy does not expose", m)
		}
	}
	// Every metric of the tracker is on the dashboard (a histogram by its
	// buckets).
	for m := range exposed {
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_sum"), "_count")
		if !used[m] && !used[base+"_bucket"] {
			t.Errorf("%s has no panel on the dashboard", m)
		}
	}
}
