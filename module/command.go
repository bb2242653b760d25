package module

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "postback",
		Usage: "test --network <name> [--click-id <id>] [--amount <n>] [--order <id>] [--event <e>] [--currency <c>]",
		Short: "Works with the postback app of a running Caddy",
		Long: `
Talks to a running Caddy through its admin API; it never opens the store,
which the running Caddy holds.

  caddy postback test --network everflow --click-id abc --amount 10 --order T1

sends a test conversion to the network with its real postback template and
prints the exact request sent and the answer (status, latency, body snippet).`,
		CobraFunc: func(cmd *cobra.Command) {
			test := &cobra.Command{
				Use:   "test",
				Short: "Send a test conversion to a network",
				RunE:  caddycmd.WrapCommandFuncForCobra(cmdTest),
			}
			test.Flags().String("network", "", "Network to test (required)")
			test.Flags().String("click-id", "", "Click ID to send (default test-click)")
			test.Flags().String("amount", "", "Order amount")
			test.Flags().String("order", "", "Order ID (default TEST-<time>)")
			test.Flags().String("event", "", "Event (default purchase)")
			test.Flags().String("currency", "", "Currency (default USD)")
			test.Flags().StringP("config", "c", "", "Configuration file, to find the admin address")
			test.Flags().StringP("adapter", "a", "", "Name of config adapter")
			test.Flags().String("address", "", "Admin API address (default localhost:2019)")
			cmd.AddCommand(test)
		},
	})
}

func cmdTest(fl caddycmd.Flags) (int, error) {
	tf := TestFire{
		Network: fl.String("network"), ClickID: fl.String("click-id"), Amount: fl.String("amount"),
		Order: fl.String("order"), Event: fl.String("event"), Currency: fl.String("currency"),
	}
	if tf.Network == "" {
		return caddy1, fmt.Errorf("--network is required")
	}
	addr, err := caddycmd.DetermineAdminAPIAddress(fl.String("address"), nil, fl.String("config"), fl.String("adapter"))
	if err != nil {
		return caddy1, fmt.Errorf("finding the admin API: %w", err)
	}
	body, _ := json.Marshal(tf)
	resp, err := caddycmd.AdminAPIRequest(addr, http.MethodPost, "/postback/test", http.Header{"Content-Type": {"application/json"}}, bytes.NewReader(body))
	if err != nil {
		return caddy1, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var res TestFireResult
	if resp.StatusCode != http.StatusOK {
		return caddy1, fmt.Errorf("admin API: %s: %s", resp.Status, bytes.TrimSpace(raw))
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		return caddy1, fmt.Errorf("unexpected answer from the admin API: %s", raw)
	}
	r, at := res.Request, res.Attempt
	fmt.Fprintf(os.Stdout, "%s %s\n", r.Method, r.URL)
	for k, vs := range r.Header {
		for _, v := range vs {
			fmt.Fprintf(os.Stdout, "%s: %s\n", k, v)
		}
	}
	if len(r.Body) > 0 {
		fmt.Fprintf(os.Stdout, "\n%s\n", r.Body)
	}
	fmt.Fprintln(os.Stdout, "---")
	if at.Error != "" && at.Status == 0 {
		fmt.Fprintf(os.Stdout, "failed after %.1f ms: %s\n", at.LatencyMS, at.Error)
		return caddy1, fmt.Errorf("the test postback to %s was not delivered", tf.Network)
	}
	fmt.Fprintf(os.Stdout, "status %d in %.1f ms: %s\n", at.Status, at.LatencyMS, at.Outcome)
	if at.Error != "" {
		fmt.Fprintf(os.Stdout, "note: %s\n", at.Error)
	}
	if at.Snippet != "" {
		fmt.Fprintf(os.Stdout, "%s\n", at.Snippet)
	}
	if at.Outcome != "delivered" {
		return caddy1, fmt.Errorf("the test postback to %s was %s", tf.Network, at.Outcome)
	}
	return 0, nil
}

// caddy1 is the exit status of a failed command (Caddy's own commands use
// 1 for a failure they report as an error).
const caddy1 = 1
