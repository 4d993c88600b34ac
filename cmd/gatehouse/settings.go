package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"
)

func newSettingsCmd(env Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "settings",
		Short: "Read and change Settings → Authentication (password policy, lockout, sessions, second factor)",
		Long: `Settings → Authentication is how people sign in: the password policy and
its rotation age, the lockout after failed sign-ins, session lifetimes,
the roles that need a second factor, HTTP Basic, the sign-in rate
limits and the rotation cadence of each class of server secret
(secret_rotation.api_keys=60d; 0s keeps the config's secrets.cadence; see
gatehouse secrets status). Every change is an audit event (admin.settings.change) with the
old and new values.`,
	}
	client := clientFlags(cmd, env)
	get := &cobra.Command{
		Use:     "get [KEY]",
		Short:   "Print the settings (one KEY, e.g. lockout.max_failures, or all)",
		Example: "  gatehouse settings get\n  gatehouse settings get lockout.max_failures\n  gatehouse settings get --json",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cur, err := request[map[string]any](cmd.Context(), client, "GET", "/v1/settings/authentication", nil)
			if err != nil {
				return err
			}
			var v any = cur
			if len(args) == 1 {
				if v, err = lookupSetting(cur, args[0]); err != nil {
					return err
				}
			}
			return output(cmd, v, func(w io.Writer) error {
				if m, ok := v.(map[string]any); ok {
					return writeSettings(w, "", m)
				}
				_, err := fmt.Fprintln(w, settingText(v))
				return err
			})
		},
	}
	var file string
	set := &cobra.Command{
		Use:   "set KEY=VALUE... | --file F",
		Short: "Change settings (the keys given; the others keep their values)",
		Long: `Change settings: each KEY=VALUE sets one key (as printed by
` + "`gatehouse settings get`" + `). A VALUE is read as JSON when it is JSON (numbers,
true/false, ["a","b"]) and as text otherwise; a list may also be given
comma-separated. --file reads a JSON object of the keys to change ("-" for
standard input). The server checks the result as a whole and refuses it
with the reason (exit 1); unknown keys are refused here (exit 2).`,
		Example: `  gatehouse settings set lockout.max_failures=10 session.idle_timeout=15m
  gatehouse settings set totp_required_roles=admin,security
  gatehouse settings set --file auth-settings.json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if (len(args) == 0) == (file == "") {
				return fmt.Errorf("give KEY=VALUE arguments or --file, not both")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var change map[string]any
			if file != "" {
				b, err := readFileOrStdin(env, file)
				if err != nil {
					return usageError{err}
				}
				if err := json.Unmarshal(b, &change); err != nil {
					return usageError{fmt.Errorf("%s: a JSON object of settings: %v", file, err)}
				}
			}
			cur, err := request[map[string]any](cmd.Context(), client, "GET", "/v1/settings/authentication", nil)
			if err != nil {
				return err
			}
			if change != nil {
				if err := mergeSettings(cur, change, ""); err != nil {
					return err
				}
			}
			for _, a := range args {
				key, val, ok := strings.Cut(a, "=")
				if !ok {
					return usageError{fmt.Errorf("%q: want KEY=VALUE, e.g. lockout.max_failures=10", a)}
				}
				if err := setSetting(cur, key, val); err != nil {
					return err
				}
			}
			out, err := request[map[string]any](cmd.Context(), client, "PUT", "/v1/settings/authentication", cur)
			if err != nil {
				return err
			}
			return output(cmd, out, func(w io.Writer) error { return writeSettings(w, "", out) })
		},
	}
	set.Flags().StringVarP(&file, "file", "f", "", `JSON object of the settings to change ("-": standard input)`)
	cmd.AddCommand(get, set)
	return cmd
}

func readFileOrStdin(env Env, name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(env.Stdin)
	}
	return os.ReadFile(name)
}

// writeSettings prints settings as "key.path: value" lines, sorted.
func writeSettings(w io.Writer, prefix string, m map[string]any) error {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if sub, ok := m[k].(map[string]any); ok {
			if err := writeSettings(w, prefix+k+".", sub); err != nil {
				return err
			}
			continue
		}
		if _, err := fmt.Fprintf(w, "%s%s: %s\n", prefix, k, settingText(m[k])); err != nil {
			return err
		}
	}
	return nil
}

func settingText(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// lookupSetting finds a dotted key.
func lookupSetting(m map[string]any, key string) (any, error) {
	parts := strings.Split(key, ".")
	var v any = m
	for i, p := range parts {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil, unknownSetting(strings.Join(parts[:i], "."), key, nil)
		}
		if v, ok = mm[p]; !ok {
			return nil, unknownSetting(strings.Join(parts[:i], "."), key, mm)
		}
	}
	return v, nil
}

// setSetting sets a dotted key to raw, typed like the current value.
func setSetting(m map[string]any, key, raw string) error {
	dot := strings.LastIndex(key, ".")
	parent := any(m)
	if dot >= 0 {
		var err error
		if parent, err = lookupSetting(m, key[:dot]); err != nil {
			return err
		}
	}
	pm, ok := parent.(map[string]any)
	if !ok {
		return unknownSetting(key[:max(dot, 0)], key, nil)
	}
	name := key[dot+1:]
	cur, ok := pm[name]
	if !ok {
		return unknownSetting(key[:max(dot, 0)], key, pm)
	}
	if _, isMap := cur.(map[string]any); isMap {
		return usageError{fmt.Errorf("%s is a group of settings: set its keys (%s.…) one by one", key, key)}
	}
	var v any
	switch err := json.Unmarshal([]byte(raw), &v); {
	case err == nil && (isString(cur) == isString(v)):
	case isList(cur):
		v = splitAny(raw)
	default:
		v = raw
	}
	pm[name] = v
	return nil
}

// mergeSettings copies the keys of change into cur, refusing unknown ones.
func mergeSettings(cur, change map[string]any, prefix string) error {
	for k, v := range change {
		c, ok := cur[k]
		if !ok {
			return unknownSetting(strings.TrimSuffix(prefix, "."), prefix+k, cur)
		}
		cm, cIsMap := c.(map[string]any)
		vm, vIsMap := v.(map[string]any)
		if cIsMap && vIsMap {
			if err := mergeSettings(cm, vm, prefix+k+"."); err != nil {
				return err
			}
			continue
		}
		cur[k] = v
	}
	return nil
}

func unknownSetting(parent, key string, siblings map[string]any) error {
	msg := fmt.Sprintf("unknown setting %q", key)
	if len(siblings) > 0 {
		names := make([]string, 0, len(siblings))
		for k := range siblings {
			if parent != "" {
				k = parent + "." + k
			}
			names = append(names, k)
		}
		sort.Strings(names)
		msg += "; known here: " + strings.Join(names, ", ")
	}
	return usageError{fmt.Errorf("%s (see `gatehouse settings get`)", msg)}
}

func isString(v any) bool { _, ok := v.(string); return ok }
func isList(v any) bool   { _, ok := v.([]any); return ok }

func splitAny(s string) []any {
	out := []any{}
	for _, p := range splitList(s) {
		out = append(out, p)
	}
	return out
}
