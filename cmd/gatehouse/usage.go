package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
)

// usageTimeout bounds one usage query.
const usageTimeout = 15 * time.Second

const usageHelp = `Usage:
  gatehouse usage [--sub SUB|*] [--from T] [--to T] [--group-by user|key|model|hour|day] [--csv|--json]

Prints usage from the ledger, asked of the meter service over NATS (--nats-url, NATS_URL).
T is RFC 3339 (2026-03-01T12:00:00Z) or a UTC date (2026-03-01). The range is [from, to);
by default the last 24 hours. --sub defaults to "*", everyone. For "gatehouse dev", start it
with --nats-listen 127.0.0.1:4222.
`

// usageOptions are the parsed flags of `gatehouse usage`.
type usageOptions struct {
	query       bus.UsageQuery
	csv, asJSON bool
}

// parseCLITime accepts RFC 3339 or a UTC date.
func parseCLITime(flagName, v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("usage: --%s %q is not an RFC 3339 time or a YYYY-MM-DD date", flagName, v)
}

// cmdUsage prints usage totals, as a table, CSV or JSON.
func cmdUsage(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c common
	fs := newFlagSet("usage", stderr, &c)
	fs.Usage = func() { fmt.Fprint(stderr, usageHelp); fs.PrintDefaults() }
	var (
		sub     = fs.String("sub", "*", "whose usage: a user's sub, or * for everyone")
		from    = fs.String("from", "", "start of the range (default: 24 hours before --to)")
		to      = fs.String("to", "", "end of the range, exclusive (default: now)")
		groupBy = fs.String("group-by", "", "group rows by user, key, model, hour or day (default: one total)")
		asCSV   = fs.Bool("csv", false, "print CSV")
		asJSON  = fs.Bool("json", false, "print JSON")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("usage: unexpected argument %q", fs.Arg(0))
	}
	opts, err := usageFlags(*sub, *from, *to, *groupBy, *asCSV, *asJSON, time.Now())
	if err != nil {
		return err
	}
	cfg, err := c.loadValid()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, usageTimeout)
	defer cancel()
	nc, err := connectAdmin(ctx, cfg, "usage", stderr)
	if err != nil {
		return err
	}
	defer nc.Close()
	q := opts.query
	q.Identity = cliIdentity()
	resp, err := bus.Request[bus.UsageResponse](ctx, nc, bus.NewSubjects(cfg.NATS.Prefix).MeterUsage(), q, nil)
	if err != nil {
		return fmt.Errorf("usage: %w", err)
	}
	return printUsage(stdout, opts, resp.Rows)
}

// usageFlags validates the flags into a query.
func usageFlags(sub, from, to, groupBy string, asCSV, asJSON bool, now time.Time) (usageOptions, error) {
	o := usageOptions{csv: asCSV, asJSON: asJSON, query: bus.UsageQuery{Sub: sub, GroupBy: groupBy, To: now.UTC()}}
	var err error
	switch {
	case asCSV && asJSON:
		return o, errors.New("usage: give at most one of --csv and --json")
	case sub == "":
		return o, errors.New("usage: --sub must name a user or be *")
	}
	switch groupBy {
	case "", "user", "key", "model", "hour", "day":
	default:
		return o, fmt.Errorf("usage: --group-by %q is not one of user, key, model, hour, day", groupBy)
	}
	if to != "" {
		if o.query.To, err = parseCLITime("to", to); err != nil {
			return o, err
		}
	}
	o.query.From = o.query.To.Add(-24 * time.Hour)
	if from != "" {
		if o.query.From, err = parseCLITime("from", from); err != nil {
			return o, err
		}
	}
	if !o.query.To.After(o.query.From) {
		return o, errors.New("usage: --to must be after --from")
	}
	return o, nil
}

// printUsage writes rows in the chosen format.
func printUsage(w io.Writer, o usageOptions, rows []bus.UsageRow) error {
	if o.asJSON {
		return json.NewEncoder(w).Encode(struct {
			Sub     string         `json:"sub"`
			From    time.Time      `json:"from"`
			To      time.Time      `json:"to"`
			GroupBy string         `json:"groupBy"`
			Rows    []bus.UsageRow `json:"rows"`
		}{o.query.Sub, o.query.From, o.query.To, o.query.GroupBy, rows})
	}
	group := o.query.GroupBy
	if group == "" {
		group = "total"
	}
	header := []string{group, "requests", "input_tokens", "output_tokens", "total_tokens", "cached_requests", "cost_usd"}
	record := func(r bus.UsageRow) []string {
		g := r.Group
		if o.query.GroupBy == "" {
			g = "all"
		}
		return []string{g, strconv.FormatInt(r.Requests, 10), strconv.FormatInt(r.InputTokens, 10),
			strconv.FormatInt(r.OutputTokens, 10), strconv.FormatInt(r.TotalTokens, 10),
			strconv.FormatInt(r.CachedRequests, 10), formatMicroUSD(r.CostMicroUSD)}
	}
	if o.csv {
		cw := csv.NewWriter(w)
		if err := cw.Write(header); err != nil {
			return err
		}
		for _, r := range rows {
			if err := cw.Write(record(r)); err != nil {
				return err
			}
		}
		cw.Flush()
		return cw.Error()
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	line := func(f []string) { fmt.Fprint(tw, strings.Join(f, "\t")+"\t\n") }
	line(header)
	for _, r := range rows {
		line(record(r))
	}
	return tw.Flush()
}

// formatMicroUSD prints millionths of a dollar as dollars with six
// decimals (exact: no floating point).
func formatMicroUSD(m int64) string {
	sign := ""
	if m < 0 {
		sign, m = "-", -m
	}
	return fmt.Sprintf("%s%d.%06d", sign, m/1_000_000, m%1_000_000)
}
