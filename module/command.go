package module

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/caddy-postback/caddy-postback/internal/record"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "postback",
		Usage: "<command> [flags]",
		Short: "Works with the postback app of a running Caddy",
		Long: `
Talks to a running Caddy through its admin API; it never opens the store,
which the running Caddy holds. Answers are tables for people; --json prints
the admin API's answer as it came.

  caddy postback conversions --network everflow --since 24h
  caddy postback conversion <id>
  caddy postback deliveries --state dead
  caddy postback delivery <id>
  caddy postback replay <delivery id>
  caddy postback replay --network everflow        (every dead letter)
  caddy postback lookup --click-id abc123
  caddy postback lookup --session <cookie value or session ID>
  caddy postback tail                             (new deliveries as they happen)
  caddy postback webhooks --result rejected
  caddy postback queue
  caddy postback health
  caddy postback test --network everflow --click-id abc --amount 10 --order T1

The admin address comes from --address, else from --config, else Caddy's
default (localhost:2019).`,
		CobraFunc: func(cmd *cobra.Command) {
			for _, sub := range []*cobra.Command{
				listCommand("conversions", "List conversions, newest first", cmdConversions,
					"network", "Credited network", "event", "Event (purchase, lead, …)",
					"status", "Order status (approved, pending, rejected, refunded)",
					"source", "Source (page, webhook, endpoint, test, or webhook:<provider>)",
					"since", "From this time (RFC 3339) or this long ago (24h)",
					"until", "Before this time (RFC 3339) or this long ago",
					"session", "Session ID"),
				showCommand("conversion", "<id>", "Show a conversion with its deliveries", cmdConversion),
				listCommand("deliveries", "List deliveries (postbacks), newest first", cmdDeliveries,
					"state", "State (queued, retrying, running, delivered, dead)", "network", "Network",
					"conversion", "Conversion ID"),
				showCommand("delivery", "<id>", "Show a delivery with every attempt", cmdDelivery),
				replayCommand(),
				lookupCommand(),
				tailCommand(),
				listCommand("webhooks", "List received webhooks, newest first", cmdWebhooks,
					"provider", "Provider", "result", "Result (recorded, duplicate, ignored, kept, rejected, failed)"),
				plainCommand("queue", "Show the delivery queue per network, and paused networks", cmdQueue),
				plainCommand("health", "Show whether the storage serves", cmdHealth),
				testCommand(),
			} {
				cmd.AddCommand(sub)
			}
		},
	})
}

// adminFlags adds the flags every subcommand has: where the admin API is,
// and --json.
func adminFlags(c *cobra.Command) *cobra.Command {
	c.Flags().StringP("config", "c", "", "Configuration file, to find the admin address")
	c.Flags().StringP("adapter", "a", "", "Name of config adapter")
	c.Flags().String("address", "", "Admin API address (default localhost:2019)")
	c.Flags().Bool("json", false, "Print the admin API's JSON answer")
	return c
}

// listCommand is a listing with filters (pairs of name and help) and
// paging.
func listCommand(name, short string, run caddycmd.CommandFunc, filters ...string) *cobra.Command {
	c := &cobra.Command{Use: name, Short: short, Args: cobra.NoArgs, RunE: caddycmd.WrapCommandFuncForCobra(run)}
	for i := 0; i+1 < len(filters); i += 2 {
		c.Flags().String(filters[i], "", filters[i+1])
	}
	c.Flags().Int("limit", 0, "Items per page (default 50, at most 500)")
	c.Flags().String("cursor", "", "Continue after the page that printed this cursor")
	return adminFlags(c)
}

// showCommand shows one record named by its argument.
func showCommand(name, arg, short string, run caddycmd.CommandFunc) *cobra.Command {
	return adminFlags(&cobra.Command{Use: name + " " + arg, Short: short, Args: cobra.ExactArgs(1), RunE: caddycmd.WrapCommandFuncForCobra(run)})
}

func plainCommand(name, short string, run caddycmd.CommandFunc) *cobra.Command {
	return adminFlags(&cobra.Command{Use: name, Short: short, Args: cobra.NoArgs, RunE: caddycmd.WrapCommandFuncForCobra(run)})
}

func replayCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "replay <delivery id> | replay --network <name>",
		Short: "Queue a delivered or dead postback again, or every dead letter of a network",
		Args:  cobra.MaximumNArgs(1),
		RunE:  caddycmd.WrapCommandFuncForCobra(cmdReplay),
	}
	c.Flags().String("network", "", "Replay every dead letter of this network")
	return adminFlags(c)
}

func lookupCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "lookup --click-id <id> | --session <cookie value or session ID>",
		Short: "Look up a click ID or a session: when each click was captured, for which network, converted or not",
		Args:  cobra.NoArgs,
		RunE:  caddycmd.WrapCommandFuncForCobra(cmdLookup),
	}
	c.Flags().String("click-id", "", "Click ID, exactly as the network sent it")
	c.Flags().String("session", "", "Session cookie value or session ID")
	c.Flags().Int("limit", 0, "Most clicks shown for a click ID (default 50)")
	return adminFlags(c)
}

func testCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "test --network <name> [--click-id <id>] [--amount <n>] [--order <id>] [--event <e>] [--currency <c>]",
		Short: "Send a test conversion to a network and show the exact request and the answer",
		Args:  cobra.NoArgs,
		RunE:  caddycmd.WrapCommandFuncForCobra(cmdTest),
	}
	c.Flags().String("network", "", "Network to test (required)")
	c.Flags().String("click-id", "", "Click ID to send (default test-click)")
	c.Flags().String("amount", "", "Order amount")
	c.Flags().String("order", "", "Order ID (default TEST-<time>)")
	c.Flags().String("event", "", "Event (default purchase)")
	c.Flags().String("currency", "", "Currency (default USD)")
	return adminFlags(c)
}

// adminClient calls the postback routes of a running Caddy's admin API.
type adminClient struct {
	addr string
}

func newAdminClient(fl caddycmd.Flags) (*adminClient, error) {
	addr, err := caddycmd.DetermineAdminAPIAddress(fl.String("address"), nil, fl.String("config"), fl.String("adapter"))
	if err != nil {
		return nil, fmt.Errorf("finding the admin API: %w", err)
	}
	return &adminClient{addr: addr}, nil
}

// errorAnswer is how Caddy's admin API reports an error it answered;
// caddycmd.AdminAPIRequest turns such an answer into an error that quotes
// the body.
var errorAnswer = regexp.MustCompile(`(?s)HTTP (\d{3}): (.*)$`)

// call sends a request and returns the answer's status and body. An
// answer the API gives with an error status is returned as such, not as an
// error; err is for an API that could not be reached.
func (c *adminClient) call(method, path string, body any) (int, []byte, error) {
	var r io.Reader
	var h http.Header
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, fmt.Errorf("encoding the request: %w", err)
		}
		r, h = bytes.NewReader(b), http.Header{"Content-Type": {"application/json"}}
	}
	resp, err := caddycmd.AdminAPIRequest(c.addr, method, path, h, r)
	if err != nil {
		if m := errorAnswer.FindStringSubmatch(err.Error()); m != nil {
			status, _ := strconv.Atoi(m[1])
			return status, []byte(m[2]), nil
		}
		return 0, nil, fmt.Errorf("the admin API at %s: %w (is Caddy running, with this admin address?)", c.addr, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, fmt.Errorf("reading the admin API's answer: %w", err)
	}
	return resp.StatusCode, raw, nil
}

// get calls a route and decodes a 200 answer into v; any other answer is
// an error that says what the API said.
func (c *adminClient) get(path string, v any) ([]byte, error) {
	return c.do(http.MethodGet, path, nil, v)
}

func (c *adminClient) do(method, path string, body, v any) ([]byte, error) {
	status, raw, err := c.call(method, path, body)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return raw, apiAnswerErr(status, raw)
	}
	if v != nil {
		if err := json.Unmarshal(raw, v); err != nil {
			return raw, fmt.Errorf("unexpected answer from the admin API: %w: %.200s", err, raw)
		}
	}
	return raw, nil
}

// apiAnswerErr reads the error of an admin API answer: its "error" field,
// or the body as it came.
func apiAnswerErr(status int, raw []byte) error {
	var e struct {
		Error string `json:"error"`
	}
	msg := string(bytes.TrimSpace(raw))
	if json.Unmarshal(raw, &e) == nil && e.Error != "" {
		msg = e.Error
	}
	return fmt.Errorf("admin API: %d %s: %s", status, http.StatusText(status), msg)
}

// listQuery builds a listing's query from the flags that are set.
func listQuery(fl caddycmd.Flags, names ...string) string {
	q := url.Values{}
	for _, n := range append(names, "cursor") {
		if v := fl.String(n); v != "" {
			q.Set(n, v)
		}
	}
	if n := fl.Int("limit"); n != 0 {
		q.Set("limit", strconv.Itoa(n))
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// printRaw writes an answer as it came, for --json.
func printRaw(raw []byte) {
	os.Stdout.Write(raw)
	if len(raw) > 0 && raw[len(raw)-1] != '\n' {
		fmt.Fprintln(os.Stdout)
	}
}

func cmdConversions(fl caddycmd.Flags) (int, error) {
	c, err := newAdminClient(fl)
	if err != nil {
		return caddy1, err
	}
	var p page[conversionView]
	raw, err := c.get("/postback/conversions"+listQuery(fl, "network", "event", "status", "source", "since", "until", "session"), &p)
	if err != nil {
		return caddy1, err
	}
	if fl.Bool("json") {
		printRaw(raw)
		return 0, nil
	}
	printConversions(os.Stdout, p.Items)
	printNextCursor(os.Stdout, p.NextCursor)
	return 0, nil
}

func cmdConversion(fl caddycmd.Flags) (int, error) {
	c, err := newAdminClient(fl)
	if err != nil {
		return caddy1, err
	}
	var v conversionDetail
	raw, err := c.get("/postback/conversions/"+url.PathEscape(fl.Arg(0)), &v)
	if err != nil {
		return caddy1, err
	}
	if fl.Bool("json") {
		printRaw(raw)
		return 0, nil
	}
	printConversion(os.Stdout, v)
	return 0, nil
}

func cmdDeliveries(fl caddycmd.Flags) (int, error) {
	c, err := newAdminClient(fl)
	if err != nil {
		return caddy1, err
	}
	var p page[deliveryView]
	raw, err := c.get("/postback/deliveries"+listQuery(fl, "state", "network", "conversion"), &p)
	if err != nil {
		return caddy1, err
	}
	if fl.Bool("json") {
		printRaw(raw)
		return 0, nil
	}
	printDeliveries(os.Stdout, p.Items)
	printNextCursor(os.Stdout, p.NextCursor)
	return 0, nil
}

func cmdDelivery(fl caddycmd.Flags) (int, error) {
	c, err := newAdminClient(fl)
	if err != nil {
		return caddy1, err
	}
	var d deliveryView
	raw, err := c.get("/postback/deliveries/"+url.PathEscape(fl.Arg(0)), &d)
	if err != nil {
		return caddy1, err
	}
	if fl.Bool("json") {
		printRaw(raw)
		return 0, nil
	}
	printDelivery(os.Stdout, d)
	return 0, nil
}

func cmdReplay(fl caddycmd.Flags) (int, error) {
	network := fl.String("network")
	if (network == "") == (fl.NArg() == 0) {
		return caddy1, errors.New("give a delivery ID, or --network to replay every dead letter of a network")
	}
	c, err := newAdminClient(fl)
	if err != nil {
		return caddy1, err
	}
	if network != "" {
		var res struct {
			Replayed int `json:"replayed"`
		}
		raw, err := c.do(http.MethodPost, "/postback/networks/"+url.PathEscape(network)+"/replay", nil, &res)
		if err != nil {
			return caddy1, err
		}
		if fl.Bool("json") {
			printRaw(raw)
			return 0, nil
		}
		fmt.Fprintf(os.Stdout, "%d dead %s of %s queued again\n", res.Replayed, plural(res.Replayed, "letter", "letters"), network)
		return 0, nil
	}
	var d deliveryView
	raw, err := c.do(http.MethodPost, "/postback/deliveries/"+url.PathEscape(fl.Arg(0))+"/replay", nil, &d)
	if err != nil {
		return caddy1, err
	}
	if fl.Bool("json") {
		printRaw(raw)
		return 0, nil
	}
	fmt.Fprintf(os.Stdout, "delivery %s to %s (%s, order %s) queued again\n", d.ID, d.Network, d.Event, d.OrderID)
	return 0, nil
}

func cmdLookup(fl caddycmd.Flags) (int, error) {
	clickID, session := fl.String("click-id"), fl.String("session")
	if (clickID == "") == (session == "") {
		return caddy1, errors.New("give --click-id or --session")
	}
	c, err := newAdminClient(fl)
	if err != nil {
		return caddy1, err
	}
	q := url.Values{}
	if clickID != "" {
		q.Set("click_id", clickID)
	} else {
		q.Set("session", session)
	}
	if n := fl.Int("limit"); n != 0 {
		q.Set("limit", strconv.Itoa(n))
	}
	var clicks []clickView
	raw, err := c.get("/postback/clicks?"+q.Encode(), &clicks)
	if err != nil {
		return caddy1, err
	}
	if fl.Bool("json") {
		printRaw(raw)
		return 0, nil
	}
	if len(clicks) == 0 {
		what := "click ID " + clickID
		if clickID == "" {
			what = "session"
		}
		fmt.Fprintf(os.Stdout, "no live click for this %s (never captured, expired, or erased)\n", what)
		return 0, nil
	}
	printClicks(os.Stdout, clicks)
	return 0, nil
}

func cmdWebhooks(fl caddycmd.Flags) (int, error) {
	c, err := newAdminClient(fl)
	if err != nil {
		return caddy1, err
	}
	var p page[record.WebhookEntry]
	raw, err := c.get("/postback/webhooks"+listQuery(fl, "provider", "result"), &p)
	if err != nil {
		return caddy1, err
	}
	if fl.Bool("json") {
		printRaw(raw)
		return 0, nil
	}
	printWebhooks(os.Stdout, p.Items)
	printNextCursor(os.Stdout, p.NextCursor)
	return 0, nil
}

func cmdQueue(fl caddycmd.Flags) (int, error) {
	c, err := newAdminClient(fl)
	if err != nil {
		return caddy1, err
	}
	var qs []queueView
	raw, err := c.get("/postback/queue", &qs)
	if err != nil {
		return caddy1, err
	}
	if fl.Bool("json") {
		printRaw(raw)
		return 0, nil
	}
	printQueue(os.Stdout, qs)
	return 0, nil
}

func cmdHealth(fl caddycmd.Flags) (int, error) {
	c, err := newAdminClient(fl)
	if err != nil {
		return caddy1, err
	}
	status, raw, err := c.call(http.MethodGet, "/postback/health", nil)
	if err != nil {
		return caddy1, err
	}
	var h healthView
	if (status != http.StatusOK && status != http.StatusServiceUnavailable) || json.Unmarshal(raw, &h) != nil {
		return caddy1, apiAnswerErr(status, raw)
	}
	if fl.Bool("json") {
		printRaw(raw)
	} else {
		printHealth(os.Stdout, h)
	}
	if !h.OK {
		return caddy1, errors.New("the postback storage is unavailable")
	}
	return 0, nil
}

func cmdTest(fl caddycmd.Flags) (int, error) {
	tf := TestFire{
		Network: fl.String("network"), ClickID: fl.String("click-id"), Amount: fl.String("amount"),
		Order: fl.String("order"), Event: fl.String("event"), Currency: fl.String("currency"),
	}
	if tf.Network == "" {
		return caddy1, errors.New("--network is required")
	}
	c, err := newAdminClient(fl)
	if err != nil {
		return caddy1, err
	}
	var res TestFireResult
	raw, err := c.do(http.MethodPost, "/postback/test", tf, &res)
	if err != nil {
		return caddy1, err
	}
	if fl.Bool("json") {
		printRaw(raw)
	} else {
		printTestFire(os.Stdout, res)
	}
	if at := res.Attempt; at.Outcome != "delivered" {
		if at.Status == 0 && at.Error != "" {
			return caddy1, fmt.Errorf("the test postback to %s was not delivered", tf.Network)
		}
		return caddy1, fmt.Errorf("the test postback to %s was %s", tf.Network, at.Outcome)
	}
	return 0, nil
}

// caddy1 is the exit status of a failed command (Caddy's own commands use
// 1 for a failure they report as an error).
const caddy1 = 1
