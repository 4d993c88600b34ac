package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// output prints a command's result: v as indented JSON with --json,
// otherwise what text writes.
func output(cmd *cobra.Command, v any, text func(w io.Writer) error) error {
	if asJSON, _ := cmd.Flags().GetBool("json"); asJSON {
		return writeJSON(cmd.OutOrStdout(), v)
	}
	return text(cmd.OutOrStdout())
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table writes a header and one tab-separated row per item, aligned.
func table[T any](w io.Writer, header string, items []T, row func(T) []string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, it := range items {
		fmt.Fprintln(tw, strings.Join(row(it), "\t"))
	}
	return tw.Flush()
}

// fields writes name, value pairs one a line, aligned.
func fields(w io.Writer, kv ...string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(tw, "%s:\t%s\n", kv[i], kv[i+1])
	}
	return tw.Flush()
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// when formats an optional time, or says none.
func when(t *time.Time, none string) string {
	if t == nil {
		return none
	}
	return t.Format(time.RFC3339)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// request sends one admin API request with the client the command's
// flags name and decodes the answer into a new T.
func request[T any](ctx context.Context, client func() (*apiClient, error), method, path string, in any) (T, error) {
	var out T
	c, err := client()
	if err != nil {
		return out, err
	}
	return out, c.do(ctx, method, path, in, &out)
}

// listAll GETs path with q a page of 1,000 at a time, following next until
// the last page, and returns every entry: items picks a page's entries,
// next its cursor ("" on the last page). Never nil, so --json prints [].
func listAll[P, T any](ctx context.Context, client func() (*apiClient, error), path string, q url.Values, items func(P) []T, next func(P) string) ([]T, error) {
	q.Set("limit", "1000")
	out := []T{}
	for {
		page, err := request[P](ctx, client, "GET", path+"?"+q.Encode(), nil)
		if err != nil {
			return nil, err
		}
		out = append(out, items(page)...)
		c := next(page)
		if c == "" {
			return out, nil
		}
		q.Set("cursor", c)
	}
}

// filterQuery is the query of a list's filter flags, leaving out the empty
// ones.
func filterQuery(kv ...string) url.Values {
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			q.Set(kv[i], kv[i+1])
		}
	}
	return q
}
