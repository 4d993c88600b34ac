package main

import (
	"context"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/authn"
)

// lister lists completion candidates ("value\tdescription") for a
// command being completed, from the admin API where they live there.
type lister func(ctx context.Context, cmd *cobra.Command, env Env) []string

// fromAPI lists the items at path (an {"<list>": […]} answer) as
// item[id] with item[desc] as its description.
func fromAPI(path, list, id, desc string) lister {
	return func(ctx context.Context, cmd *cobra.Command, env Env) []string {
		c, err := clientOf(cmd.Flags(), env)
		if err != nil {
			return nil
		}
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		var out map[string][]map[string]any
		if c.do(ctx, "GET", path, nil, &out) != nil {
			return nil
		}
		var vals []string
		for _, it := range out[list] {
			v, _ := it[id].(string)
			d, _ := it[desc].(string)
			if v != "" {
				vals = append(vals, strings.TrimSuffix(v+"\t"+d, "\t"))
			}
		}
		return vals
	}
}

// firstOf lists what the first lister that finds anything finds (one's own
// tokens; everyone's for a credential that is no person's).
func firstOf(ls ...lister) lister {
	return func(ctx context.Context, cmd *cobra.Command, env Env) []string {
		for _, l := range ls {
			if vals := l(ctx, cmd, env); len(vals) > 0 {
				return vals
			}
		}
		return nil
	}
}

func fixed(vals ...string) lister {
	return func(context.Context, *cobra.Command, Env) []string { return vals }
}

var (
	keyIDs     = fromAPI("/v1/keys", "keys", "id", "name")
	clientIDs  = fromAPI("/v1/clients", "clients", "client_id", "name")
	usernames  = fromAPI("/v1/users", "users", "username", "role")
	tokenIDs   = firstOf(fromAPI("/v1/tokens", "tokens", "id", "name"), fromAPI("/v1/tokens?all=true", "tokens", "id", "name"))
	tierNames  = fromAPI("/v1/tiers", "tiers", "name", "")
	roleNames  = fixed(authn.Roles()...)
	eventTypes = lister(func(context.Context, *cobra.Command, Env) []string {
		var out []string
		for _, t := range audit.EventTypes() {
			out = append(out, t.Name+"\t"+t.Doc)
		}
		return out
	})
	settingKeys = lister(func(ctx context.Context, cmd *cobra.Command, env Env) []string {
		c, err := clientOf(cmd.Flags(), env)
		if err != nil {
			return nil
		}
		var cur map[string]any
		if c.do(ctx, "GET", "/v1/settings/authentication", nil, &cur) != nil {
			return nil
		}
		var keys []string
		var walk func(prefix string, m map[string]any)
		walk = func(prefix string, m map[string]any) {
			for k, v := range m {
				if sub, ok := v.(map[string]any); ok {
					walk(prefix+k+".", sub)
				} else {
					keys = append(keys, prefix+k)
				}
			}
		}
		walk("", cur)
		return keys
	})
)

// completions names, by command path below the root, what each
// positional argument completes to.
var completions = map[string][]lister{
	"keys get": {keyIDs}, "keys revoke": {keyIDs}, "keys rotate": {keyIDs},
	"clients get": {clientIDs}, "clients revoke": {clientIDs}, "clients rotate": {clientIDs}, "clients unlock": {clientIDs},
	"users get": {usernames}, "users disable": {usernames}, "users enable": {usernames}, "users unlock": {usernames},
	"users delete": {usernames}, "users reset-password": {usernames}, "users reset-totp": {usernames}, "users set-role": {usernames, roleNames},
	"tokens revoke": {tokenIDs},
	"settings get":  {settingKeys},
}

// flagCompletions names, by command path, what a flag's value completes to.
var flagCompletions = map[string]map[string]lister{
	"keys create":    {"tier": tierNames},
	"clients create": {"tier": tierNames},
	"users create":   {"role": roleNames},
	"tokens create":  {"role": roleNames},
	"audit export":   {"type": eventTypes},
}

// addCompletions wires completions and flagCompletions into the tree:
// `gatehouse completion bash|zsh|fish|powershell` scripts then complete
// ids and enum values fetched from the server (with the command's
// --addr, --token and TLS flags, or the environment).
func addCompletions(root *cobra.Command, env Env) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		path := strings.TrimPrefix(c.CommandPath(), root.Name()+" ")
		if ls, ok := completions[path]; ok {
			c.ValidArgsFunction = func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
				if len(args) >= len(ls) {
					return nil, cobra.ShellCompDirectiveNoFileComp
				}
				return ls[len(args)](cmd.Context(), cmd, env), cobra.ShellCompDirectiveNoFileComp
			}
		}
		for name, l := range flagCompletions[path] {
			c.RegisterFlagCompletionFunc(name, func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
				return l(cmd.Context(), cmd, env), cobra.ShellCompDirectiveNoFileComp
			})
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}
