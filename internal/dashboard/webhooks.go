package dashboard

import (
	"net/http"

	"github.com/caddy-postback/caddy-postback/internal/record"
	"github.com/caddy-postback/caddy-postback/internal/store"
)

// webhooksPage lists the webhook log, newest first, by provider and result.
type webhooksPage struct {
	Provider, Result string
	Results          []string
	Items            []record.WebhookEntry
	Paging
}

func (webhooksPage) head() head { return head{Title: "Webhooks", Nav: "webhooks", Live: true} }

func (d *Dashboard) serveWebhooks(w http.ResponseWriter, r *http.Request) {
	f := newFilters(r, "provider", "result", "cursor")
	p := webhooksPage{Provider: f.get("provider"), Result: f.oneOf("result", store.FilterWebhookResults...), Results: store.FilterWebhookResults}
	if f.err != nil {
		d.fail(w, r, f.err)
		return
	}
	q := store.WebhookQuery{Provider: p.Provider, Result: p.Result, Cursor: f.get("cursor")}
	ctx, cancel := d.context(r)
	defer cancel()
	items, next, err := d.st.WebhookLog(ctx, q, d.now())
	if err != nil {
		d.fail(w, r, err)
		return
	}
	p.Items = items
	p.Paging = pagingOf(requestOf(r).Base, "/webhooks", f.keep("provider", "result"), q.Cursor, next)
	d.render(w, r, http.StatusOK, "webhooks", p)
}

// webhookPage shows one webhook, with its payload when it was kept for
// inspection.
type webhookPage struct{ E *record.WebhookEntry }

func (p webhookPage) head() head { return head{Title: "Webhook from " + p.E.Provider, Nav: "webhooks"} }

func (d *Dashboard) serveWebhook(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := d.context(r)
	defer cancel()
	e, err := d.st.Webhook(ctx, r.PathValue("id"), d.now())
	if err != nil {
		d.fail(w, r, err)
		return
	}
	d.render(w, r, http.StatusOK, "webhook", webhookPage{E: e})
}
