package module_test

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestRuleValues: a conversion rule's values reach the network's template,
// literal ones as written and placeholders as the confirmation page's
// request gives them; a value nobody sets renders empty.
func TestRuleValues(t *testing.T) {
	net := newNetwork(t)
	up := shop(t, nil)
	mustLoad(t, fmt.Sprintf(`{
%s	postback {
		storage %s
		network aff {
			click_param clickid
			url "%s/pb?c={click_id}&o={order_id}&offer={value.offer_id}&plan={value.plan}&none={value.unset}"
		}
	}
}

:%d {
	postback {
		conversion purchase {
			match path /thank-you
			order_id {http.request.uri.query.order}
			value offer_id 7
			value plan {http.request.uri.query.plan}
		}
	}
	reverse_proxy %s
}
`, globalHead(), t.TempDir(), net.URL, httpPort, hostPort(up)))
	v := visitor(t)
	get(t, v, "/?clickid=V1")
	get(t, v, "/thank-you?order=71&plan=pro+yearly")
	get(t, v, "/thank-you?order=72")
	got := net.waitFor(t, 2, 5*time.Second)
	want := map[string]bool{
		"/pb?c=V1&o=71&offer=7&plan=pro+yearly&none=": true,
		"/pb?c=V1&o=72&offer=7&plan=&none=":           true,
	}
	if len(got) != 2 || !want[got[0]] || !want[got[1]] || got[0] == got[1] {
		t.Fatalf("postbacks %q, want %s", got, strings.Join([]string{"/pb?c=V1&o=71&offer=7&plan=pro+yearly&none=", "/pb?c=V1&o=72&offer=7&plan=&none="}, " and "))
	}
}
